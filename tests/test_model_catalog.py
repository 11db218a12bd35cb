"""The one list of models: GGUF headers read cheaply and checked for completeness, folders, embedded models, and
names refused before anything loads. No model is loaded here.

    pytest tests/test_model_catalog.py -q
"""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.core.errors import InputError
from assistant.core.gguf.header import read_header
from assistant.core.model_catalog import ModelCatalog
from tests.tiny_models import build_tiny_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("tiny"))[0]


@pytest.fixture
def models(tmp_path, tiny):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny, folder / "tiny.gguf")
    return folder


def test_the_header_says_type_sizes_and_vocabulary(tiny):
    header = read_header(tiny)
    assert header.quantization == "F32" and header.vocab_size > 100 and header.value("general.architecture") == "llama"
    assert header.value(".block_count") == 2 and header.kv_cache_bytes(256) == 2 * 2 * 256 * 2 * 16 * 2
    assert header.data_bytes <= header.size_bytes


@pytest.mark.parametrize("keep, reason", [(0.95, "cut short"), (0.001, "ends inside its header")])
def test_a_file_cut_short_is_refused_with_the_byte_counts(tmp_path, tiny, keep, reason):
    whole = tiny.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:int(len(whole) * keep)])
    with pytest.raises(InputError, match=reason):
        read_header(cut)


def test_the_list_marks_damaged_files_and_folders_unusable_and_skips_hidden_ones(models):
    (models / "junk.gguf").write_bytes(b"GGUF\x09\x00\x00\x00" + b"\x00" * 32)
    (models / ".part-download.gguf").write_bytes(b"partial")
    empty = models / "empty-folder"
    empty.mkdir()
    hf = models / "hf-model"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "llama", "dtype": "bfloat16",
                                                "max_position_embeddings": 512}))
    (hf / "model.safetensors").write_bytes(b"\x00" * 1000)
    entries = {entry.id: entry for entry in ModelCatalog(models).entries()}
    assert ".part-download.gguf" not in entries
    assert entries["tiny.gguf"].usable and entries["tiny.gguf"].quantization == "F32"
    assert "version 9" in entries["junk.gguf"].problem
    assert "is not a model" in entries["empty-folder"].problem
    assert entries["hf-model"].usable and (entries["hf-model"].format, entries["hf-model"].quantization,
                                           entries["hf-model"].size_bytes) == ("safetensors", "bfloat16", 1000)
    assert {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"} <= set(entries)


def test_find_refuses_unknown_names_paths_outside_and_unusable_models(models, tmp_path, tiny):
    catalog = ModelCatalog(models)
    assert catalog.find("tiny.gguf").reference == str(models / "tiny.gguf")
    assert catalog.find(str(models / "tiny.gguf")).id == "tiny.gguf"  # its path inside the folder names it too
    (models / "broken.gguf").write_text("no")
    for name, message in {"nope": "does not exist here", "../tiny.gguf": "outside the models folder",
                          str(tiny): "outside the models folder", "~/x.gguf": "outside the models folder",
                          "org/model": "--allow-hub-models", "broken.gguf": "cannot be used", "  ": "No model named",
                          None: "No model named"}.items():
        with pytest.raises(InputError, match=message):
            catalog.find(name)


def test_the_model_the_server_started_with_is_listed_even_outside_the_folder(models, tiny):
    catalog = ModelCatalog(models, started_with=str(tiny))
    entry = catalog.find(str(tiny))
    assert entry.source == "--model" and entry.usable and entry.id == str(tiny)


def test_downloads_are_refused_offline_unallowed_or_malformed_before_anything_is_fetched(models, monkeypatch):
    from assistant.model_download import check_download, download, download_field_state

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        download("owner/repo/model.gguf", models, ("owner/repo/model.gguf",))
    for hub_id, message in {"owner/other": "--allow-hub-models", "../etc/x.gguf": "is not a hub id",
                            "owner/repo/../../x.gguf": "is not a hub id", "owner": "is not a hub id",
                            "": "Type a hub id"}.items():
        with pytest.raises(InputError, match=message):
            check_download(hub_id, ("owner/repo",))
    assert "HF_HUB_OFFLINE" in download_field_state(("*",))
    assert "--allow-hub-models" in download_field_state(())
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert download_field_state(("*",)) == "" and check_download(" any/repo ", ("*",)) == "any/repo"
    assert sorted(p.name for p in models.iterdir()) == ["tiny.gguf"]  # nothing was written



def test_the_default_model_is_listed_by_its_short_name_with_its_memory_known_before_it_is_assembled(tmp_path):
    from assistant.core.model_sources import DEFAULT_CHAT_MODEL, EMBEDDED_MODELS
    from assistant.core.split_files import part_file

    split = EMBEDDED_MODELS[DEFAULT_CHAT_MODEL].split
    before = ModelCatalog(tmp_path / "models", tmp_path / "empty-cache").find(DEFAULT_CHAT_MODEL)  # nothing assembled
    assert before.usable and before.reference == DEFAULT_CHAT_MODEL and before.size_bytes == split.size
    assert before.kv_bytes_per_token > 0 and before.vocab_size > 100_000  # read from the first part's header
    assert before.memory_needed(4096) > split.size + 4096 * before.kv_bytes_per_token
    with pytest.raises(InputError, match="cut short"):  # the first part alone is no whole GGUF file
        read_header(part_file(split.parts[0], split))

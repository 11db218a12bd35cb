"""Tests for the adapter store (finetune/adapters.py): atomic publish, names, pickles, round trips (crashes:
tests/test_adapter_crashes.py).

    pytest tests/test_adapters.py -q

Adapters here are real files: safetensors written with ``safetensors.torch.save_file`` and a PEFT-shaped
adapter_config.json; one test saves a real PEFT LoRA of the tiny Llama and loads it back.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from assistant.core.errors import InputError, UserError
from finetune.adapters import AdapterStore, sanitize_name, write_metadata
from tests.adapter_files import hidden_entries, make_metadata, publish, tree, write_adapter


@pytest.fixture
def store(tmp_path) -> AdapterStore:
    return AdapterStore(tmp_path / "adapters")


def test_publish_list_get(store):
    staging = store.staging("sentiment-v1")
    with staging as folder:
        assert folder.parent == store.root and folder.name.startswith(".staging-")
        write_adapter(folder)
        assert store.list() == []  # nothing is visible while it is being written
    info = staging.info
    assert info.name == "sentiment-v1" and info.path == store.root / "sentiment-v1"
    assert info.broken is None and info.task == "sentiment" and info.kind == "causal-lm-lora"
    assert info.base_model == "smollm2-135m-instruct" and info.labels == ["negative", "positive"]
    assert info.metrics["adapter"] == {"accuracy": 0.9} and info.created == "2025-01-31T12:00:00+00:00"
    assert sorted(p.name for p in info.path.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "metadata.json", "metrics.jsonl"]
    assert store.list() == [info]
    assert store.get("sentiment-v1") == info and store.get("  sentiment-v1 ") == info
    assert store.metadata("sentiment-v1")["name"] == "sentiment-v1"
    assert hidden_entries(store.root) == []


def test_store_sets_name_and_fills_a_missing_created_date(store):
    info = publish(store, "x", created=None, name="something else")
    assert info.metadata["name"] == "x" and info.metadata["created"].startswith("20") and info.broken is None
    metadata = make_metadata()
    del metadata["created"]
    staging = store.staging("no-date")
    with staging as folder:
        write_adapter(folder)
        write_metadata(folder, metadata)
    assert staging.info.created == staging.info.metadata["created"] and staging.info.broken is None


def test_list_is_newest_first(store):
    publish(store, "old", created="2024-05-01T08:00:00+00:00")
    publish(store, "new", created="2025-06-01T08:00:00+00:00")
    publish(store, "middle", created="2024-12-24T18:30:00")
    assert [info.name for info in store.list()] == ["new", "middle", "old"]


def test_name_collision_gets_a_suffix_and_never_overwrites(store):
    first = publish(store, "faq", data_fingerprint="first")
    weights = (first.path / "adapter_model.safetensors").read_bytes()
    assert publish(store, "faq").name == "faq-2"
    assert publish(store, "faq").name == "faq-3"
    assert store.metadata("faq")["data_fingerprint"] == "first"
    assert (first.path / "adapter_model.safetensors").read_bytes() == weights
    assert store.metadata("faq-3")["name"] == "faq-3"
    (store.root / "made-by-hand").mkdir()  # even an empty folder is never replaced
    assert publish(store, "made-by-hand").name == "made-by-hand-2" and (store.root / "made-by-hand").is_dir()
    long_name = "a" * 64
    publish(store, long_name)
    assert publish(store, long_name).name == "a" * 62 + "-2"


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/b", "..", "a\\b", "", "   ", "a" * 65, ".", ".hidden",
                                 "a\x00b", "-rf", "x..y", "name.", "C:\\x", "CON", "nul.txt", "情感", "my adapter"])
def test_unsafe_names_are_refused_everywhere_and_touch_nothing(tmp_path, bad):
    store = AdapterStore(tmp_path / "adapters")
    publish(store, "good")
    before = tree(tmp_path)
    calls = [lambda: sanitize_name(bad), lambda: store.staging(bad), lambda: store.get(bad),
             lambda: store.metadata(bad), lambda: store.rename("good", bad), lambda: store.rename(bad, "good"),
             lambda: store.delete(bad), lambda: store.export_zip(bad, tmp_path / "out")]
    for call in calls:
        with pytest.raises(InputError, match="Adapter name"):
            call()
    assert tree(tmp_path) == before
    assert [info.name for info in store.list()] == ["good"]


def test_name_errors_say_how_to_fix_them():
    with pytest.raises(InputError) as caught:
        sanitize_name("my adapter/v1")
    message = str(caught.value)
    assert "' '" in message and "'/'" in message and "'my-adapter-v1'" in message and "letters" in message
    assert "64" in str(pytest.raises(InputError, sanitize_name, "b" * 70).value)
    assert sanitize_name("Sentiment_v1.2-zh") == "Sentiment_v1.2-zh" and sanitize_name("b" * 64) == "b" * 64


def test_pickle_files_are_refused(store):
    staging = store.staging("pickled")
    with pytest.raises(InputError) as caught:
        with staging as folder:
            write_adapter(folder)
            torch.save({"lr": 2e-4}, folder / "training_args.bin")
    message = str(caught.value)
    assert "'pickled' was not saved" in message and "training_args.bin" in message
    assert "pickle" in message and "safetensors" in message
    assert store.list() == [] and hidden_entries(store.root) == []


def test_bin_weights_without_safetensors_are_refused(store):
    with pytest.raises(InputError, match="adapter_model.bin.*adapter_model.safetensors is missing"):
        with store.staging("old-format") as folder:
            write_adapter(folder)
            os.replace(folder / "adapter_model.safetensors", folder / "adapter_model.bin")
    assert store.list() == []


@pytest.mark.parametrize("damage, expected", [
    (lambda f: (f / "metadata.json").write_text("{not json", encoding="utf-8"), "metadata.json is not valid JSON"),
    (lambda f: (f / "metadata.json").unlink(), "metadata.json is missing"),
    (lambda f: write_metadata(f, {"task": "sentiment"}), "metadata.json lacks base_model, kind"),
    (lambda f: write_metadata(f, make_metadata(kind="gguf")), "kind is 'gguf'"),
    (lambda f: (f / "adapter_config.json").unlink(), "adapter_config.json is missing"),
    (lambda f: (f / "adapter_model.safetensors").unlink(), "adapter_model.safetensors is missing"),
    (lambda f: (f / "adapter_model.safetensors").write_bytes(
        (f / "adapter_model.safetensors").read_bytes()[:-100]), "adapter_model.safetensors is .* bytes but"),
    (lambda f: (f / "head.safetensors").write_bytes((f / "adapter_model.safetensors").read_bytes()),
     "head.safetensors and head_config.json must be saved together"),
])
def test_incomplete_folders_are_refused_at_publish_and_listed_as_broken(store, damage, expected):
    with pytest.raises(InputError, match=expected):
        with store.staging("damaged") as folder:
            write_adapter(folder)
            damage(folder)
    assert store.list() == [] and hidden_entries(store.root) == []

    good, victim = publish(store, "good"), publish(store, "victim", created="2020-01-01T00:00:00+00:00")
    damage(victim.path)  # damaged after publishing, e.g. by hand or a failing disk
    listed = {info.name: info for info in store.list()}
    assert listed["good"] == good and listed["victim"].broken and expected.split(" ")[0] in listed["victim"].broken
    with pytest.raises(UserError, match="'victim' cannot be used"):
        store.get("victim")
    assert store.get("victim", allow_broken=True).broken == listed["victim"].broken
    store.delete("victim")  # broken adapters can still be deleted
    assert store.list() == [good]


def test_folder_with_an_invalid_name_is_listed_as_broken(store):
    publish(store, "good")
    odd = store.root / "made by hand"
    odd.mkdir()
    write_adapter(odd)
    listed = {info.name: info for info in store.list()}
    assert listed["good"].broken is None and "rename the folder" in listed["made by hand"].broken


def test_rename_round_trip(store):
    publish(store, "draft")
    other = publish(store, "taken")
    renamed = store.rename("draft", "final")
    assert renamed.name == "final" and renamed.broken is None and renamed.metadata["name"] == "final"
    assert not (store.root / "draft").exists() and store.metadata("final")["name"] == "final"
    with pytest.raises(InputError, match="no adapter named 'draft'.*Available: 'final', 'taken'"):
        store.get("draft")
    with pytest.raises(InputError, match="'taken' already exists"):
        store.rename("final", "taken")
    assert store.get("taken") == other and store.get("final").broken is None
    assert store.rename("final", "final").name == "final"
    assert store.rename("final", "draft").metadata["name"] == "draft"


def test_delete_round_trip(store):
    publish(store, "keep")
    doomed = publish(store, "doomed")
    store.delete("doomed")
    assert not doomed.path.exists() and [info.name for info in store.list()] == ["keep"]
    assert hidden_entries(store.root) == []
    with pytest.raises(InputError, match="no adapter named 'doomed'.*Available: 'keep'"):
        store.delete("doomed")
    assert publish(store, "doomed").name == "doomed"  # the name is free again


def test_export_zip_round_trip(store, tmp_path):
    info = publish(store, "sentiment-v1")
    out = tmp_path / "downloads"
    zip_path = store.export_zip("sentiment-v1", out)
    assert zip_path == out / "sentiment-v1.zip" and os.listdir(out) == ["sentiment-v1.zip"]
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == [f"sentiment-v1/{p.name}" for p in sorted(info.path.iterdir())]
        for path in info.path.iterdir():
            assert archive.read(f"sentiment-v1/{path.name}") == path.read_bytes()
    extracted = tmp_path / "unzipped"
    zipfile.ZipFile(zip_path).extractall(extracted)
    assert AdapterStore(extracted).get("sentiment-v1").broken is None
    assert store.export_zip("sentiment-v1", out) == zip_path and os.listdir(out) == ["sentiment-v1.zip"]
    with pytest.raises(InputError, match="no adapter named 'missing'"):
        store.export_zip("missing", out)
    assert os.listdir(out) == ["sentiment-v1.zip"]


def test_concurrent_publishes_get_distinct_names(store):
    threads_count = 8
    start = threading.Barrier(threads_count + 1)
    names, errors, broken_seen = [], [], []

    def train():
        try:
            start.wait()
            names.append(publish(store, "same").name)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def watch():
        start.wait()
        while len(names) + len(errors) < threads_count:
            broken_seen.extend(info.name for info in store.list() if info.broken)

    threads = [threading.Thread(target=train) for _ in range(threads_count)] + [threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and broken_seen == []
    assert sorted(names) == sorted(["same"] + [f"same-{i}" for i in range(2, threads_count + 1)])
    assert all(info.metadata["name"] == info.name and info.broken is None for info in store.list())
    assert hidden_entries(store.root) == []


def test_write_metadata_is_atomic_utf8_and_indented(tmp_path):
    path = write_metadata(tmp_path, {"task": "topics", "labels": ["体育", "财经"]})
    text = path.read_text(encoding="utf-8")
    assert '"体育"' in text and '\n  "task": "topics"' in text and json.loads(text)["labels"] == ["体育", "财经"]
    with pytest.raises(TypeError):
        write_metadata(tmp_path, {"path": Path("/x")})  # not JSON: the old file stays as it was
    assert path.read_text(encoding="utf-8") == text and os.listdir(tmp_path) == ["metadata.json"]


def test_symlinks_in_staging_are_refused(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the store", encoding="utf-8")
    with pytest.raises(InputError, match="notes.txt is a symbolic link"):
        with store.staging("linked") as folder:
            write_adapter(folder)
            (folder / "notes.txt").symlink_to(secret)
    assert store.list() == [] and secret.read_text(encoding="utf-8") == "outside the store"


def test_real_peft_adapter_publishes_and_loads_back(store, tiny_llm_dir):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                           task_type="CAUSAL_LM"))
    staging = store.staging("tiny-lora")
    with staging as folder:
        lora.save_pretrained(folder)
        write_metadata(folder, make_metadata(base_model=str(tiny_llm_dir)))
    info = staging.info
    assert info.broken is None
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm_dir), info.path)
    saved = dict(lora.named_parameters())
    for name, param in loaded.named_parameters():
        if "lora_" in name:
            assert torch.equal(param, saved[name])


def test_the_version_moves_on_every_change_by_any_process_and_only_then(store, tmp_path):
    import subprocess
    import sys

    from tests.adapter_files import REPO_ROOT

    empty = store.version()
    first = publish(store, "first")
    assert store.version() != empty
    saved = store.version()
    store.list(), store.get("first"), store.metadata("first"), store.names(), store.export_zip("first", tmp_path)
    with pytest.raises(ValueError):
        with store.staging("abandoned") as folder:  # a hidden work folder comes and goes: no visible change
            write_adapter(folder)
            assert store.version() == saved
            raise ValueError("cancelled")
    assert store.version() == saved == AdapterStore(store.root).version()
    store.rename("first", "renamed")
    renamed = store.version()
    assert renamed != saved and store.names() == ("renamed",)
    store.delete("renamed")
    assert store.version() == empty
    publish(store, "first")
    assert store.version() != saved, "saved again under its old name: a new folder, a new version"
    before = store.version()
    child = ("import shutil, sys\nfrom finetune.adapters import AdapterStore\n"
             "store = AdapterStore(sys.argv[1])\n"
             "with store.staging('from-child') as folder:\n"
             "    shutil.copytree(sys.argv[2], folder, dirs_exist_ok=True)\n")
    subprocess.run([sys.executable, "-c", child, str(store.root), str(first.path.parent / "first")], cwd=REPO_ROOT,
                   check=True)
    assert store.version() != before and set(store.names()) == {"first", "from-child"}

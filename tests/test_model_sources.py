"""Resolving model references: embedded names, folders, GGUF files, hub ids, and bad paths."""

import json
from pathlib import Path

import pytest

from assistant.core.errors import ModelLoadError
from assistant.core.model_sources import embedded_path, resolve_model


def test_local_model_folder_resolves_to_itself(tiny_llm_dir, tmp_path):
    resolved = resolve_model(str(tiny_llm_dir), cache_dir=tmp_path)
    assert resolved.location == str(tiny_llm_dir.resolve()) and resolved.is_local


def test_folder_without_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a model: it has no config.json"):
        resolve_model(str(tmp_path), cache_dir=tmp_path)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="No such model folder"):
        resolve_model("./no/such/model", cache_dir=tmp_path)


def test_hub_ids_pass_through_unchanged(tmp_path):
    resolved = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", cache_dir=tmp_path)
    assert resolved.location == "HuggingFaceTB/SmolLM2-135M-Instruct" and not resolved.is_local


def test_embedded_encoder_is_a_plain_folder():
    folder = embedded_path("minilm-l6-v2")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "bert"


@pytest.mark.real
def test_gguf_is_converted_once_and_then_reused(tmp_path, monkeypatch):
    first = resolve_model("smollm2-135m-instruct", cache_dir=tmp_path)
    assert (tmp_path / "converted").is_dir() and first.location.startswith(str(tmp_path))
    written = {p.name for p in Path(first.location).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= written

    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a second start must not convert again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    assert resolve_model("smollm2-135m-instruct", cache_dir=tmp_path).location == first.location
    assert not list((tmp_path / "converted").glob(".converting-*"))

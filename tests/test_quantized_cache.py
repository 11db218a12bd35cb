"""The quantized-model cache: the second nf4 load reads the saved 4-bit weights, bit-identical."""

import pytest
import torch

from assistant import quantized_cache
from assistant.loading import load_causal_lm

PROMPT = torch.tensor([[3, 17, 42, 99, 5]])


@pytest.fixture
def cache_everything(monkeypatch):
    monkeypatch.setattr(quantized_cache, "MIN_WEIGHT_BYTES", 0)  # tiny test models are cached too


def _logits(loaded):
    with torch.inference_mode():
        return loaded.model(PROMPT).logits


def test_second_load_comes_from_the_cache_with_identical_logits(tiny_llm_dir, tmp_path, cache_everything,
                                                                monkeypatch):
    first = load_causal_lm(str(tiny_llm_dir), "nf4", "cpu", cache_dir=tmp_path)
    entries = list((tmp_path / "quantized").iterdir())
    assert len(entries) == 1 and (entries[0] / "model.safetensors").is_file()
    assert not [p for p in (tmp_path / "quantized").iterdir() if p.name.startswith(".saving-")]

    from transformers import AutoModelForCausalLM

    calls = []
    original = AutoModelForCausalLM.from_pretrained.__func__
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        classmethod(lambda cls, where, **kw: calls.append(str(where)) or original(cls, where, **kw)))
    second = load_causal_lm(str(tiny_llm_dir), "nf4", "cpu", cache_dir=tmp_path)
    assert calls == [str(entries[0])]  # never the float folder: nothing is quantized again
    assert torch.equal(_logits(first), _logits(second))
    assert second.location == first.location == str(tiny_llm_dir)  # the float weights stay the source
    import bitsandbytes as bnb

    assert isinstance(second.model.model.layers[0].mlp.down_proj, bnb.nn.Linear4bit)


def test_a_damaged_entry_is_dropped_and_quantized_again(tiny_llm_dir, tmp_path, cache_everything):
    reference = _logits(load_causal_lm(str(tiny_llm_dir), "nf4", "cpu", cache_dir=tmp_path))
    entry = next((tmp_path / "quantized").iterdir())
    (entry / "model.safetensors").write_bytes(b"not safetensors")
    again = load_causal_lm(str(tiny_llm_dir), "nf4", "cpu", cache_dir=tmp_path)
    assert torch.equal(_logits(again), reference)
    assert (entry / "model.safetensors").stat().st_size > 100  # saved afresh


def test_a_changed_model_folder_gets_a_new_entry(tiny_llm_dir, tmp_path, cache_everything):
    config = {"quant_type": "nf4"}
    before = quantized_cache.cache_folder(str(tiny_llm_dir), "nf4", config, tmp_path)
    assert before == quantized_cache.cache_folder(str(tiny_llm_dir), "nf4", config, tmp_path)
    assert before != quantized_cache.cache_folder(str(tiny_llm_dir), "int8", config, tmp_path)
    weights = tiny_llm_dir / "model.safetensors"
    stat = weights.stat()
    import os

    os.utime(weights, (stat.st_atime, stat.st_mtime + 10))
    try:
        assert before != quantized_cache.cache_folder(str(tiny_llm_dir), "nf4", config, tmp_path)
    finally:
        os.utime(weights, (stat.st_atime, stat.st_mtime))


def test_an_unwritable_cache_only_costs_the_speed_up(tiny_llm_dir, tmp_path, cache_everything):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    loaded = load_causal_lm(str(tiny_llm_dir), "nf4", "cpu", cache_dir=blocker)
    assert _logits(loaded).shape[-1] == loaded.model.config.vocab_size


def test_small_checkpoints_and_hub_ids_are_not_cached(tiny_llm_dir, tmp_path):
    assert quantized_cache.cache_folder(str(tiny_llm_dir), "nf4", {}, tmp_path) is None
    assert quantized_cache.cache_folder("HuggingFaceTB/SmolLM2-135M-Instruct", "nf4", {}, tmp_path) is None

"""Loading in each precision: real bitsandbytes layers for nf4/int8, float dtypes otherwise."""

import pytest
import torch

from assistant.core.errors import ModelLoadError
from assistant.core.loading import FALLBACK_CHAT_TEMPLATE, load_causal_lm
from assistant.core.precision import Precision


def _linear_types(model) -> set[str]:
    return {type(m).__name__ for name, m in model.named_modules() if name.endswith(("q_proj", "down_proj"))}


def test_nf4_replaces_linear_layers_with_bitsandbytes_4bit(tiny_llm_dir):
    import bitsandbytes as bnb

    loaded = load_causal_lm(str(tiny_llm_dir), quant="nf4")
    q_proj = loaded.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.quant_state.quant_type == "nf4"
    assert q_proj.weight.quant_state.nested, "double quantization must be on"
    assert loaded.precision == Precision("nf4", double_quant=True) and loaded.device == "cpu"
    assert str(loaded.precision) == "nf4 (double quant)"


def test_int8_uses_bitsandbytes_8bit_layers(tiny_llm_dir):
    loaded = load_causal_lm(str(tiny_llm_dir), quant="int8")
    assert _linear_types(loaded.model) == {"Linear8bitLt"}


@pytest.mark.parametrize("quant, dtype, label", [("fp32", torch.float32, "fp32"), ("bf16", torch.bfloat16, "bf16"),
                                                 ("none", torch.float32, "fp32")])
def test_float_precisions(tiny_llm_dir, quant, dtype, label):
    loaded = load_causal_lm(str(tiny_llm_dir), quant=quant)
    assert loaded.model.dtype == dtype and loaded.precision == Precision(label) and str(loaded.precision) == label
    assert _linear_types(loaded.model) == {"Linear"}


def test_nf4_footprint_is_smaller_than_fp32(tiny_llm_dir):
    nf4 = load_causal_lm(str(tiny_llm_dir), quant="nf4").footprint_bytes
    fp32 = load_causal_lm(str(tiny_llm_dir), quant="fp32").footprint_bytes
    assert nf4 < fp32


def test_model_without_chat_template_gets_fallback_and_notice(tiny_llm_dir, tmp_path):
    import shutil

    folder = tmp_path / "no-template"
    shutil.copytree(tiny_llm_dir, folder)
    config_path = folder / "tokenizer_config.json"
    text = config_path.read_text()
    import json

    config = json.loads(text)
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    loaded = load_causal_lm(str(folder), quant="fp32")
    assert loaded.tokenizer.chat_template == FALLBACK_CHAT_TEMPLATE
    assert loaded.notices and "no chat template" in loaded.notices[0]


def test_unknown_hub_id_offline_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="Could not load model hub id 'no-such-org/no-such-model'"):
        load_causal_lm("no-such-org/no-such-model", quant="fp32")


def test_unknown_quant_is_a_clear_error(tiny_llm_dir):
    with pytest.raises(ModelLoadError, match="Unknown --quant"):
        load_causal_lm(str(tiny_llm_dir), quant="int3")


def test_nf4_without_bitsandbytes_is_a_clear_error(tiny_llm_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail
    with pytest.raises(ModelLoadError, match="--quant nf4 needs bitsandbytes.*--quant none"):
        load_causal_lm(str(tiny_llm_dir), quant="nf4")

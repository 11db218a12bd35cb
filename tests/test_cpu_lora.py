"""The CPU fast LoRA path (finetune/cpu_lora.py) against PEFT's own forward, on the tiny Llama in 4-bit:
the same outputs and gradients, the model unchanged afterwards, and the cases where it stays off.

    pytest tests/test_cpu_lora.py -q
"""

from __future__ import annotations

import pytest
import torch

from assistant.core.machine_settings import MachineSettings
from finetune.config import FinetuneConfig
from finetune.cpu_lora import choose_mode, cpu_has_bf16, fast_lora_forward

PROBE = torch.tensor([[5, 17, 42, 99, 7, 3], [8, 1, 64, 12, 2, 0]])


def build(tmp_path, base, quant="nf4", dropout=0.0):
    from finetune.models import build_generative

    config = FinetuneConfig(task="classification", data="finetune/samples/sentiment_en.csv", base=str(base),
                            quant=quant, lora_dropout=dropout, data_dir=str(tmp_path))
    torch.manual_seed(0)
    model, _ = build_generative(config, MachineSettings())
    with torch.no_grad():  # LoRA B starts at zero: give it values so the update takes part in the comparison
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    model.train()
    return model


def loss_and_grads(model):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=PROBE).logits
    loss = logits.float().logsumexp(-1).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return logits.detach(), grads


@pytest.mark.parametrize("quant", ["nf4", "none"])
def test_fp32_fast_path_computes_what_peft_computes(tmp_path, tiny_llm_dir, quant):
    model = build(tmp_path, tiny_llm_dir, quant)
    reference_logits, reference_grads = loss_and_grads(model)
    with fast_lora_forward(model, "fp32") as mode:
        assert mode == "fp32"
        logits, grads = loss_and_grads(model)
    assert torch.allclose(logits, reference_logits, atol=1e-5, rtol=1e-4)
    assert reference_grads.keys() == grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        assert torch.allclose(grad, reference_grads[name], atol=1e-5, rtol=1e-3), name
    restored_logits, _ = loss_and_grads(model)  # PEFT's forward is back: bit-for-bit the same as before
    assert torch.equal(restored_logits, reference_logits)


def test_bf16_fast_path_stays_close_to_the_fp32_result(tmp_path, tiny_llm_dir):
    model = build(tmp_path, tiny_llm_dir)
    reference_logits, reference_grads = loss_and_grads(model)
    with fast_lora_forward(model, "bf16") as mode:
        assert mode == "bf16"
        logits, grads = loss_and_grads(model)
    assert logits.dtype == torch.float32  # only the frozen matmuls run in bf16
    relative = (logits - reference_logits).norm() / reference_logits.norm()
    assert relative < 0.02, f"bf16 base matmuls moved the logits by {relative:.3%}"
    for name, grad in grads.items():
        cosine = torch.nn.functional.cosine_similarity(grad.flatten(), reference_grads[name].flatten(), dim=0)
        assert cosine > 0.99, f"{name}: gradient direction {cosine:.4f}"


def test_dropout_still_drops_on_the_fast_path(tmp_path, tiny_llm_dir):
    model = build(tmp_path, tiny_llm_dir, dropout=0.5)
    with fast_lora_forward(model, "fp32"):
        first, second = model(input_ids=PROBE).logits, model(input_ids=PROBE).logits
        model.eval()
        third, fourth = model(input_ids=PROBE).logits, model(input_ids=PROBE).logits
    assert not torch.equal(first, second), "training mode: each call draws new dropout masks"
    assert torch.equal(third, fourth), "eval mode: no dropout"


def test_auto_picks_bf16_only_on_cpus_with_bf16_instructions(tmp_path, tiny_llm_dir):
    model = build(tmp_path, tiny_llm_dir)
    assert choose_mode(model, "auto") == ("bf16" if cpu_has_bf16() else "fp32")
    assert choose_mode(model, "off").startswith("off")
    with pytest.raises(ValueError, match="one of auto, bf16, fp32, off"):
        choose_mode(model, "fast")


def test_it_stays_off_when_the_dequantized_base_would_not_fit(tmp_path, tiny_llm_dir, monkeypatch):
    import psutil

    model = build(tmp_path, tiny_llm_dir)
    tight = psutil.virtual_memory()._replace(available=1024)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: tight)
    with fast_lora_forward(model, "auto") as mode:
        assert mode.startswith("off: the dequantized base would take")
        assert "forward" not in vars(next(m for m in model.modules() if hasattr(m, "lora_A")))


def test_a_bad_fast_lora_flag_is_refused():
    from assistant.core.errors import InputError

    with pytest.raises(InputError, match="--fast-lora 'quick' is not one of auto, bf16, fp32, off"):
        FinetuneConfig(data="x.csv", fast_lora="quick")


def test_training_records_the_mode_and_leaves_peft_in_place(tmp_path, tiny_llm_dir):
    from finetune.encode import encode_supervised
    from finetune.loop import LoopSettings, train
    from tests.test_finetune_recipe import _tok

    model = build(tmp_path, tiny_llm_dir)
    rows = [{"text": "great film", "label": "positive"}, {"text": "awful food", "label": "negative"}] * 4
    examples = encode_supervised("classification", rows, _tok(tiny_llm_dir), 64, {"labels": ["negative", "positive"]})
    (tmp_path / "run").mkdir()
    result = train(model, examples, examples[:2], LoopSettings(1e-2, 4, 1, 3, 3, 100, 0, "fp32"), 0, tmp_path / "run")
    assert result.fast_lora == "fp32"
    assert not any("forward" in vars(m) for m in model.modules()), "the fused forward must not outlive training"

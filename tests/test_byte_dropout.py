"""ByteMaskDropout: the LoRA dropout used for CPU training."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from finetune.byte_dropout import ByteMaskDropout, random_bytes, use_byte_dropout


def test_drops_the_asked_share_and_keeps_the_expectation():
    torch.manual_seed(0)
    dropout = ByteMaskDropout(0.1).train()
    x = torch.ones(400_000)
    y = dropout(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - dropout.p) < 0.003 and dropout.p == round(0.1 * 256) / 256
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout: same expectation
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - dropout.p)))


def test_bytes_are_uniform_in_every_lane():
    torch.manual_seed(1)
    values = random_bytes((7 * 256 * 2000,)).long()
    for lane in range(7):  # each of the seven bytes taken from a 64-bit draw
        counts = torch.bincount(values[lane::7], minlength=256)
        assert counts.min() > 1700 and counts.max() < 2300, f"lane {lane} is biased"


def test_eval_mode_and_zero_probability_pass_through():
    x = torch.randn(10, 10)
    assert torch.equal(ByteMaskDropout(0.5).eval()(x), x)
    assert torch.equal(ByteMaskDropout(0.0).train()(x), x)
    with pytest.raises(ValueError):
        ByteMaskDropout(1.0)


def test_swaps_every_lora_dropout_of_a_peft_model(tiny_llm_dir):
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llm_dir),
                           LoraConfig(r=4, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]))
    layers = model.base_model.model.config.num_hidden_layers
    assert use_byte_dropout(model) == 2 * layers
    dropouts = [d for m in model.modules() if hasattr(m, "lora_dropout") for d in m.lora_dropout.values()]
    assert dropouts and all(isinstance(d, ByteMaskDropout) for d in dropouts)
    batch = torch.tensor([[5, 6, 7, 8]])
    model.train()
    model(input_ids=batch).logits.sum().backward()  # trains through the new dropout

"""The training loop's loss: the causal-LM shortcut must equal transformers' own loss."""

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from finetune.encode import IGNORE, collate
from finetune.loop import _forward_loss, _predicts_next_tokens


def _batch(vocab: int) -> dict:
    torch.manual_seed(0)
    examples = []
    for length, prompt in ((9, 6), (14, 5), (5, 4)):  # targets at different positions per row
        ids = torch.randint(3, vocab, (length,)).tolist()
        examples.append({"input_ids": ids, "labels": [IGNORE] * prompt + ids[prompt:]})
    return collate(examples, pad_id=0)


def test_next_token_loss_equals_transformers_loss_and_gradients(tiny_llm_dir):
    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    assert _predicts_next_tokens(model)
    batch = _batch(model.config.vocab_size)
    expected = model(**batch).loss
    expected.backward()
    expected_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    loss, tokens = _forward_loss(model, batch)
    loss.backward()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert tokens == int((batch["labels"] != IGNORE).sum())
    for got, want in zip([p.grad for p in model.parameters() if p.requires_grad], expected_grads):
        assert torch.allclose(got, want, atol=1e-6, rtol=1e-4)


def test_a_batch_without_targets_falls_back_to_the_plain_loss(tiny_llm_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    batch = _batch(model.config.vocab_size)
    batch["labels"][:] = IGNORE
    loss, tokens = _forward_loss(model, batch)
    assert tokens == 0 and torch.isnan(loss) == torch.isnan(model(**batch).loss)


def test_encoders_keep_their_own_loss(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    assert not _predicts_next_tokens(model)

"""How likely a model finds each answer given its prompt: the score that preference evaluation (DPO, ORPO and
KTO alike) compares between the better and the worse answer, base model vs adapter.

    scores = response_log_likelihoods(model, examples, tokenizer.pad_token_id)   # examples: input_ids + labels

Tests: ``pytest tests/test_preference.py tests/test_kto.py -q``.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from finetune.encode import IGNORE, collate


@torch.no_grad()
def response_log_likelihoods(model, examples: list[dict], pad_id: int, batch_size: int = 8) -> list[float]:
    """Mean log-probability per answer token of each example, given its prompt."""
    model.eval()
    sums = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id)
        device = next(model.parameters()).device
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits[:, :-1].float()
        labels = batch["labels"][:, 1:].to(device)
        mask = labels != IGNORE
        picked = logits.log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        sums += ((picked * mask).sum(-1) / mask.sum(-1).clamp(min=1)).tolist()
    return sums


def base_and_adapter_margins(model, pad_id: int, examples: list[dict], pairs: list[tuple[int, int]], what: str,
                             on_status=None) -> dict:
    """{"base": {...}, "adapter": {...}}: with the adapter off, then on, the reward accuracy (share of
    ``pairs`` of (better, worse) example indices whose better answer is the likelier one) and the mean margin
    (nats per token). ``what`` names the examples in the status line."""
    results = {}
    for which in ("base", "adapter"):
        if on_status:
            on_status(f"Scoring {what} with the {which} model")
        with model.disable_adapter() if which == "base" else nullcontext():
            scores = response_log_likelihoods(model, examples, pad_id)
        margins = [scores[better] - scores[worse] for better, worse in pairs]
        results[which] = {"reward_accuracy": sum(m > 0 for m in margins) / max(len(margins), 1),
                          "margin": sum(margins) / max(len(margins), 1)}
    return results

"""KTO (``--method preference --preference-loss kto``): TRL's ``KTOTrainer`` on unpaired good / bad answers.

    python -m finetune --method preference --preference-loss kto --data ratings.jsonl --max-steps 20
    # ratings.jsonl: {"prompt": "...", "completion": "...", "label": true}   (false: a bad answer)

KTO learns from answers rated one at a time (a thumbs up or down), not from pairs; a file of prompt / chosen /
rejected pairs works too (each pair becomes one good and one bad row). Like DPO, the reference is the base
with the adapter switched off. The trainer computes its KL estimate from the other completions of a batch, so
the batch holds at least 2 rows and the rows are shuffled here once (TRL reads them in order). Good and bad
rows are weighted so each side counts the same (TRL's advice: desirable x count within 1 to 4/3 of undesirable).

Evaluation, base vs adapter on the held-out rows (``unpaired_metrics``): the share of pairs (a good and a bad
answer to the same prompt; when no prompt has both, every good / bad combination) whose good answer gets the
higher mean per-token log-likelihood, and the mean margin. Tests: ``pytest tests/test_kto.py -q``.
"""

from __future__ import annotations

import random
from itertools import product

from assistant.core.errors import InputError
from finetune.encode import encode_sft

MAX_EVAL_PAIRS = 2000


def is_unpaired(rows) -> bool:
    return bool(rows) and "completion" in rows[0]


def kto_rows(rows: list[dict], seed: int = 0) -> list[dict]:
    """Unpaired rows ``{"prompt", "completion", "label"}`` (pairs split in two), shuffled with ``seed``."""
    out = []
    for row in rows:
        if "completion" in row:
            out.append({"prompt": row["prompt"], "completion": row["completion"], "label": bool(row["label"])})
        else:
            out += [{"prompt": row["prompt"], "completion": row["chosen"], "label": True},
                    {"prompt": row["prompt"], "completion": row["rejected"], "label": False}]
    random.Random(seed).shuffle(out)
    return out


def check_kto_rows(rows: list[dict]) -> tuple[int, int]:
    """(good, bad) counts; InputError when one side is missing (KTO weighs one against the other)."""
    good = sum(1 for r in rows if r["label"])
    bad = len(rows) - good
    if not good or not bad:
        missing = "good (label true)" if not good else "bad (label false)"
        raise InputError(f"KTO needs good and bad answers; the training rows have no {missing} ones. Add some, or "
                         "train the good answers alone as instruction data (--task instruction).")
    return good, bad


def kto_trainer(common: dict, model, tokenizer, rows: list[dict], val_rows: list[dict], callbacks: list, seed: int):
    """A ``KTOTrainer`` on ``rows`` (paired or not) with the run's common trainer arguments."""
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    train = kto_rows(rows, seed)
    good, bad = check_kto_rows(train)
    if common["per_device_train_batch_size"] < 2:
        common = {**common, "per_device_train_batch_size": 2}  # the KL estimate needs another row in the batch
    args = KTOConfig(**common, loss_type="kto", desirable_weight=1.0, undesirable_weight=round(good / bad, 4))
    datasets = {"train_dataset": Dataset.from_list(_conversational(train))}
    if val_rows:
        datasets["eval_dataset"] = Dataset.from_list(_conversational(kto_rows(val_rows, seed)))
    return KTOTrainer(model=model, args=args, processing_class=tokenizer, callbacks=callbacks, **datasets)


def _conversational(rows: list[dict]) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}], "label": r["label"]} for r in rows]


def eval_pairs(rows: list[dict]) -> tuple[list[tuple[int, int]], str]:
    """(good index, bad index) pairs over ``rows`` (unpaired) and how they were formed."""
    good = [i for i, r in enumerate(rows) if r["label"]]
    bad = [i for i, r in enumerate(rows) if not r["label"]]
    same = [(g, b) for g, b in product(good, bad) if rows[g]["prompt"] == rows[b]["prompt"]]
    if same:
        return same[:MAX_EVAL_PAIRS], "same prompt"
    pairs = list(product(good, bad))
    if len(pairs) > MAX_EVAL_PAIRS:
        pairs = random.Random(0).sample(pairs, MAX_EVAL_PAIRS)
    return pairs, "every good / bad combination"


def unpaired_metrics(model, tokenizer, rows: list[dict], max_len: int, on_status=None) -> dict:
    """{"base": {...}, "adapter": {...}}: reward accuracy (share of pairs whose good answer is the likelier one),
    margin (nats per token) and the number of pairs, on unpaired held-out ``rows``."""
    from finetune.answer_likelihood import base_and_adapter_margins

    pairs, formed = eval_pairs(rows)
    examples = [encode_sft(tokenizer, [{"role": "user", "content": r["prompt"]}], r["completion"], max_len)
                for r in rows]
    results = base_and_adapter_margins(model, tokenizer.pad_token_id, examples, pairs,
                                       f"{len(rows)} held-out rated answers", on_status)
    return {which: {**metrics, "pairs": len(pairs), "pairing": formed} for which, metrics in results.items()}

"""Training data from ratings, in the formats the Fine-tune tab reads, and which method fits them.

    plan = plan_training(store.read().ratings)          # or wanted="kto" / "dpo" / "sft"
    plan.method, plan.reason                           # "kto", "12 answers rated up and 9 down ..."
    path = write_dataset(plan.rows, folder / "feedback-kto.jsonl")
    plan.form                                          # the Fine-tune form values that train it

Three datasets (JSON Lines):
  kto  {"prompt", "completion", "label"}: every rated reply (up: true, down: false), and each better answer (true)
  dpo  {"prompt", "chosen", "rejected"}:  each thumbs-down with a better answer (chosen = the better answer)
  sft  {"messages": [...]}:               the conversation with a liked reply or a better answer as the last turn
The prompt is the user's message; after earlier turns, the conversation written out as "User: ... / Assistant:
..." lines (the preference formats take one prompt). Tests: ``pytest tests/test_feedback_dataset.py -q``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.atomic_files import atomic_write_text
from assistant.core.errors import InputError

MIN_ROWS = 10
"""What the Fine-tune reader needs (``finetune.data.table.Limits.min_rows``)."""
METHODS = ("auto", "kto", "dpo", "sft")
FORMS = {"kto": {"task": "preference", "method": "preference", "preference_loss": "kto"},
         "dpo": {"task": "preference", "method": "preference", "preference_loss": "dpo"},
         "sft": {"task": "instruction", "method": "supervised"}}
NAMES = {"kto": "KTO", "dpo": "DPO", "sft": "SFT (supervised fine-tuning)"}


def prompt_text(conversation: list[dict]) -> str:
    turns = [m for m in conversation if m["role"] in ("user", "assistant")]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in turns)


def kto_rows(ratings: list[dict]) -> list[dict]:
    rows = []
    for r in ratings:
        prompt = prompt_text(r["conversation"])
        rows.append({"prompt": prompt, "completion": r["reply"], "label": r["rating"] == "up"})
        if r.get("better_answer"):
            rows.append({"prompt": prompt, "completion": r["better_answer"], "label": True})
    return rows


def dpo_rows(ratings: list[dict]) -> list[dict]:
    return [{"prompt": prompt_text(r["conversation"]), "chosen": r["better_answer"], "rejected": r["reply"]}
            for r in ratings if r["rating"] == "down" and r.get("better_answer")]


def sft_rows(ratings: list[dict]) -> list[dict]:
    rows = []
    for r in ratings:
        answer = r["reply"] if r["rating"] == "up" else r.get("better_answer")
        if answer:
            rows.append({"messages": [*r["conversation"], {"role": "assistant", "content": answer}]})
    return rows


BUILDERS = {"kto": kto_rows, "dpo": dpo_rows, "sft": sft_rows}


@dataclass
class Plan:
    method: str
    reason: str
    rows: list[dict] = field(default_factory=list)

    @property
    def form(self) -> dict:
        return dict(FORMS[self.method])


def counts(ratings: list[dict]) -> dict:
    up = sum(1 for r in ratings if r["rating"] == "up")
    corrected = sum(1 for r in ratings if r["rating"] == "down" and r.get("better_answer"))
    return {"up": up, "down": len(ratings) - up, "corrected": corrected}


def plan_training(ratings: list[dict], wanted: str = "auto") -> Plan:
    """The method for these ratings (``wanted``, or chosen by ``auto``) with its reason and rows; InputError when
    they are too few, saying how many more are needed."""
    if wanted not in METHODS:
        raise InputError(f"'method' must be one of {', '.join(METHODS)}; got {str(wanted)[:20]!r}.")
    n = counts(ratings)
    seen = f"{n['up']} rated up, {n['down']} down ({n['corrected']} with a better answer)"
    method, why = wanted, f"you chose {NAMES.get(wanted, wanted)}"
    if wanted == "auto":
        if n["down"] == 0:
            method, why = "sft", "nothing is rated down, so it learns the liked answers"
        elif n["corrected"] == n["down"] and n["up"] == 0:
            method, why = "dpo", "every thumbs-down has a better answer: DPO learns from the pairs directly"
        else:
            method, why = "kto", "KTO learns from answers rated one at a time, good and bad, pairs or not"
    rows = BUILDERS[method](ratings)
    if len(rows) < MIN_ROWS:
        more = MIN_ROWS - len(rows)
        key = {"kto": "feedback.too_few_kto", "dpo": "feedback.too_few_dpo", "sft": "feedback.too_few_sft"}[method]
        raise InputError.keyed(key, method=NAMES[method], least=MIN_ROWS, count=len(rows), seen=seen, more=more)
    if method == "kto" and (all(r["label"] for r in rows) or not any(r["label"] for r in rows)):
        side = "down" if all(r["label"] for r in rows) else "up"
        raise InputError(f"KTO needs answers rated up and down; none is rated {side} ({seen}). Rate some {side}, "
                         "or pick SFT.")
    return Plan(method, f"{NAMES[method]} on {len(rows)} examples from {seen}: {why}.", rows)


def write_dataset(rows: list[dict], target: str | Path) -> Path:
    """``rows`` as JSON Lines at ``target``, atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), fsync=True)
    return target

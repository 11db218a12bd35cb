"""``--base auto``: pick the base model and approach from the task, the data's language and the device.

    from finetune.auto_choice import choose_base, resolve_auto
    choice = choose_base("classification", "en", "cpu")      # BaseChoice(base='minilm-l6-v2', approach='head', ...)
    config, choice = resolve_auto(config, rows, "cpu")       # config with base/approach filled in

The rule, from what the embedded models do on a laptop CPU (measured: bench/README.md, "One-click fine-tune
and the automatic base"):

- English classification or NER on a CPU (or with many rows on a GPU): the 4-bit MiniLM encoder with
  LoRA and a classifier head. It trains many times faster than the generative model on the same
  rows, and predicts a label in one forward pass.
- Chinese data: SmolLM2 QLoRA. MiniLM's English word-piece vocabulary turns most Chinese characters
  into [UNK], so a head on it cannot learn from the text.
- Translation, FAQ, instruction and unsupervised text: SmolLM2 QLoRA; only a causal LM writes text.
- On a GPU with a few thousand rows or fewer, the generative path: training is cheap there and the
  adapter answers in the chat model's own words.
An explicit ``--approach head`` or ``--approach generative`` with ``--base auto`` keeps the approach
and picks the matching embedded base.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from assistant.core.language import is_chinese

AUTO = "auto"
GENERATIVE_BASE = "smollm2-135m-instruct"
HEAD_BASE = "minilm-l6-v2"
HEAD_TASKS = ("classification", "ner")
GPU_HEAD_ROWS = 2000
"""On a GPU, English label tasks with more rows than this still take the head: it scales better."""
LANGUAGE_SAMPLE_ROWS = 200


@dataclass(frozen=True)
class BaseChoice:
    base: str
    approach: str
    reason: str

    def describe(self) -> str:
        return f"auto → {self.base} ({self.approach}): {self.reason}"


def data_language(rows: list[dict]) -> str:
    """'zh' when most sampled rows are written in Chinese, else 'en' (the Latin-script default)."""
    texts = [_row_text(row) for row in rows[:LANGUAGE_SAMPLE_ROWS]]
    texts = [t for t in texts if t.strip()]
    if not texts:
        return "en"
    chinese = sum(is_chinese(t) for t in texts)
    return "zh" if chinese * 2 >= len(texts) else "en"


def _row_text(row: dict) -> str:
    if isinstance(row.get("tokens"), list):
        return "".join(str(t) for t in row["tokens"])
    for key in ("text", "source", "question", "prompt", "instruction"):
        if isinstance(row.get(key), str):
            return row[key]
    return " ".join(str(v) for v in row.values() if isinstance(v, str))


def choose_base(task: str, language: str, device: str, rows: int = 0, approach: str = AUTO) -> BaseChoice:
    """The base and approach ``--base auto`` trains for this task, data language and device."""
    if approach == "head":
        return BaseChoice(HEAD_BASE, "head", "--approach head asks for an encoder with a classifier head.")
    if approach == "generative":
        return BaseChoice(GENERATIVE_BASE, "generative", "--approach generative asks for a causal LM.")
    if task not in HEAD_TASKS:
        return BaseChoice(GENERATIVE_BASE, "generative", f"{task} needs a model that writes text (SmolLM2 QLoRA).")
    if language == "zh":
        return BaseChoice(GENERATIVE_BASE, "generative", "the data is Chinese, which MiniLM's English vocabulary "
                          "cannot read; SmolLM2 QLoRA learns it.")
    if device == "cpu":
        return BaseChoice(HEAD_BASE, "head", "on a CPU the 4-bit MiniLM encoder with a classifier head trains "
                          "about 20x faster than a generative model and predicts in one forward pass.")
    if rows > GPU_HEAD_ROWS:
        return BaseChoice(HEAD_BASE, "head", f"with {rows:,} rows the encoder head trains and predicts fastest.")
    return BaseChoice(GENERATIVE_BASE, "generative", "on a GPU a few thousand rows train quickly on the chat "
                      "model, which then answers with the labels in its own words.")


def resolve_auto(config, rows: list[dict], device: str):
    """(config with a concrete base and approach, the BaseChoice); (config, None) when base is not auto."""
    if config.base != AUTO:
        return config, None
    choice = choose_base(config.task, data_language(rows), device, len(rows), config.approach)
    return dataclasses.replace(config, base=choice.base, approach=choice.approach), choice

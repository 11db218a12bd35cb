"""``--base auto``: pick the base model and approach from the task, the data's language and the device.

    from finetune.auto_choice import choose_base, resolve_auto
    choice = choose_base("classification", "en", "cpu")      # BaseChoice(base='minilm-l6-v2', approach='head', ...)
    choose_base("translation", "en", "cpu", target_lang="zh").base   # 'qwen2.5-coder-0.5b-instruct'
    config, choice = resolve_auto(config, rows, "cpu")       # config with base/approach filled in

Tests: ``pytest tests/test_auto_choice.py -q``. The rule, from what the embedded models do on a laptop CPU
(measured: bench/README.md, "One-click fine-tune and the automatic base" and "Fine-tuning the default chat
model on Chinese data"):

- English classification or NER on a CPU (or with many rows on a GPU): the 4-bit MiniLM encoder with
  LoRA and a classifier head. It trains many times faster than a generative model on the same
  rows, and predicts a label in one forward pass.
- Chinese data (any task), and translation into Chinese: Qwen2.5-Coder-0.5B QLoRA, the default chat
  model. MiniLM's English word-piece vocabulary turns most Chinese characters into [UNK], so a head on
  it cannot learn from the text; SmolLM2-135M was trained on English and writes Chinese poorly (its
  byte-level tokens also make a Chinese text 2.6x as many tokens as Qwen's vocabulary does).
- English translation, FAQ, instruction and unsupervised text: SmolLM2-135M QLoRA. Only a causal LM
  writes text, and for English the small model is enough to learn a format or a domain while it trains
  about 1.5x as many tokens per CPU-second as Qwen (measured on the same rows and CPU) on a fifth of the
  parameters, and evaluates faster; pick ``--base qwen2.5-coder-0.5b-instruct`` by hand for better writing.
- On a GPU with a few thousand rows or fewer, the generative path: training is cheap there and the
  adapter answers in the chat model's own words (Qwen for Chinese, SmolLM2 for English).
An explicit ``--approach head`` or ``--approach generative`` with ``--base auto`` keeps the approach
and picks the matching embedded base (for generative: by language, as above).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from assistant.core.language import is_chinese

AUTO = "auto"
GENERATIVE_BASE = "smollm2-135m-instruct"
"""The English generative base: small and fast."""
CHINESE_BASE = "qwen2.5-coder-0.5b-instruct"
"""The generative base for Chinese data and for writing Chinese: the default chat model."""
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


def writes_chinese(task: str, target_lang: str) -> bool:
    """True when the adapter must write Chinese although the data is not Chinese: translation into it."""
    if task != "translation" or not (target_lang or "").strip():
        return False
    from assistant.core.errors import InputError
    from assistant.tasks.translation import language_code

    try:
        return language_code(target_lang) == "zh"
    except InputError:  # an unknown code is reported by the recipe with the valid ones; here it is not Chinese
        return False


def choose_base(task: str, language: str, device: str, rows: int = 0, approach: str = AUTO,
                target_lang: str = "") -> BaseChoice:
    """The base and approach ``--base auto`` trains for this task, data language (and, for translation,
    target language) and device."""
    into_chinese = writes_chinese(task, target_lang)
    chinese = language == "zh" or into_chinese
    generative = CHINESE_BASE if chinese else GENERATIVE_BASE
    if approach == "head":
        return BaseChoice(HEAD_BASE, "head", "--approach head asks for an encoder with a classifier head.")
    if approach == "generative":
        return BaseChoice(generative, "generative", "--approach generative asks for a causal LM" +
                          ("; Qwen2.5 reads and writes Chinese." if chinese else "; SmolLM2 is the fast one."))
    if into_chinese and language != "zh":
        return BaseChoice(CHINESE_BASE, "generative", "translation into Chinese needs a model that writes "
                          "Chinese: Qwen2.5 QLoRA (SmolLM2 was trained on English).")
    if language == "zh":
        return BaseChoice(CHINESE_BASE, "generative", "the data is Chinese, which MiniLM's English vocabulary "
                          "cannot read and SmolLM2 writes poorly; Qwen2.5 QLoRA learns it.")
    if task not in HEAD_TASKS:
        return BaseChoice(GENERATIVE_BASE, "generative", f"{task} needs a model that writes text; for English "
                          "SmolLM2 QLoRA trains faster than Qwen2.5 and is enough to learn a format.")
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
    choice = choose_base(config.task, data_language(rows), device, len(rows), config.approach,
                         config.target_lang)
    return dataclasses.replace(config, base=choice.base, approach=choice.approach), choice

"""Canonical rows -> token ids and loss labels, and length-grouped batches.

Supervised examples are rendered with the model's chat template from the task module's own
``training_example`` (the same prompt the app serves with), and the loss is on the answer
only. Unsupervised text is packed into full ``max_seq_len`` blocks. Batches group examples
of similar length, so almost no compute is spent on padding.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator

import torch

IGNORE = -100


def task_module(task: str):
    """The serving module of a task (``assistant.tasks.<task>``)."""
    return importlib.import_module(f"assistant.tasks.{task}")


def prompt_and_target(task: str, row: dict, options: dict) -> tuple[list[dict], str]:
    """Chat messages and the answer text for one canonical row."""
    if task == "instruction":
        messages = [dict(m) for m in row["messages"]]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError("an instruction example must end with an assistant message")
        return messages[:-1], messages[-1]["content"]
    prompt_options = {k: v for k, v in options.items() if k != "tag_labels"}  # tag_labels is for heads
    return task_module(task).training_example(row, **prompt_options)


def _ids(encoded) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def encode_sft(tokenizer, messages: list[dict], target: str, max_len: int) -> dict:
    """input_ids and labels (prompt masked) for one supervised example, cut to ``max_len``."""
    prompt = _ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": target}], tokenize=True))
    if full[: len(prompt)] == prompt and len(full) > len(prompt):
        answer = full[len(prompt):]
    else:  # templates that rewrite earlier turns: fall back to prompt + target + eos
        answer = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    # Trailing whitespace after the end-of-turn token teaches nothing; keep the eos itself.
    while len(answer) > 1 and tokenizer.decode(answer[-1:]).strip() == "":
        answer = answer[:-1]
    answer = answer[:max_len // 2] if len(answer) > max_len // 2 else answer
    room = max_len - len(answer)
    if len(prompt) > room:  # keep the start (system + instructions) and the end of the prompt
        head = room // 2
        prompt = prompt[:head] + prompt[len(prompt) - (room - head):]
    return {"input_ids": prompt + answer, "labels": [IGNORE] * len(prompt) + answer}


def encode_supervised(task: str, rows: list[dict], tokenizer, max_len: int, options: dict) -> list[dict]:
    return [encode_sft(tokenizer, *prompt_and_target(task, row, options), max_len) for row in rows]


def encode_packed_text(rows: list[dict], tokenizer, max_len: int) -> list[dict]:
    """Continued pre-training: concatenate texts (eos between) and cut into full blocks."""
    stream: list[int] = []
    for row in rows:
        stream += tokenizer(row["text"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    blocks = [stream[i:i + max_len] for i in range(0, len(stream), max_len)]
    if len(blocks) > 1 and len(blocks[-1]) < max_len // 4:
        blocks.pop()  # a tiny tail block adds noise, not signal
    return [{"input_ids": b, "labels": list(b)} for b in blocks if len(b) > 1]


def count_target_tokens(examples: list[dict]) -> int:
    return sum(sum(1 for x in e["labels"] if x != IGNORE) for e in examples)


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding is masked out of attention and loss."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    per_sequence = isinstance(examples[0]["labels"], int)  # sequence classification: one label each
    labels = (torch.tensor([e["labels"] for e in examples]) if per_sequence
              else torch.full((len(examples), width), IGNORE, dtype=torch.long))
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        mask[i, :n] = 1
        if not per_sequence:
            labels[i, :len(e["labels"])] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def length_grouped_batches(examples: list[dict], batch_size: int, seed: int, epoch: int) -> Iterator[list[dict]]:
    """Shuffle, then sort within windows of 50 batches by length, then shuffle the batches."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(examples[i]["input_ids"]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    for batch in batches:
        yield [examples[i] for i in batch]

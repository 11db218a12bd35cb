"""Canonical rows -> token ids and loss labels, and length-grouped batches.

Supervised examples are rendered with the model's chat template from the task module's own
``training_example`` (the same prompt the app serves with), and the loss is on the answer
only. Unsupervised text is packed into full ``max_seq_len`` blocks. Batches group examples
of similar length, so almost no compute is spent on padding.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

IGNORE = -100


def task_module(task: str):
    """The serving module of a task (``assistant.tasks.<task>``): its prompt, parser and metric are what
    training encodes and evaluates with."""
    from assistant.core.errors import InputError
    from assistant.tasks import classification, faq, ner, translation

    modules = {module.TASK_NAME: module for module in (classification, ner, translation, faq)}
    if task not in modules:
        raise InputError(f"Unknown task '{task}'. Tasks with a prompt: {', '.join(modules)}.")
    return modules[task]


def prompt_and_target(task: str, row: dict, options: dict) -> tuple[list[dict], str]:
    """Chat messages and the answer text for one canonical row."""
    if task == "instruction":
        messages = [dict(m) for m in row["messages"]]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError("an instruction example must end with an assistant message")
        return messages[:-1], messages[-1]["content"]
    prompt_options = {k: v for k, v in options.items() if k != "tag_labels"}  # tag_labels is for heads
    return task_module(task).training_example(row, **prompt_options)


def encode_sft(tokenizer, messages: list[dict], target: str, max_len: int) -> dict:
    """input_ids and labels (prompt masked) for one supervised example, cut to ``max_len``."""
    from assistant.core.generation import encode_messages

    prompt = encode_messages(tokenizer, messages)
    full = encode_messages(tokenizer, messages + [{"role": "assistant", "content": target}],
                           add_generation_prompt=False)
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
    """Right-pad to the longest example (torch's ``pad_sequence``); padding is masked out of attention and loss.

    Not transformers' ``DataCollatorForSeq2Seq``: it needs the tokenizer where callers hold its pad id, pads
    through ``tokenizer.pad``, and has no case for one label per sequence (classification heads).
    """
    ids = [torch.tensor(e["input_ids"]) for e in examples]
    input_ids = pad_sequence(ids, batch_first=True, padding_value=pad_id)
    mask = pad_sequence([torch.ones_like(row) for row in ids], batch_first=True, padding_value=0)
    if isinstance(examples[0]["labels"], int):  # sequence classification: one label each
        labels = torch.tensor([e["labels"] for e in examples])
    else:
        labels = pad_sequence([torch.tensor(e["labels"]) for e in examples], batch_first=True, padding_value=IGNORE)
        labels = F.pad(labels, (0, input_ids.shape[1] - labels.shape[1]), value=IGNORE)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def length_grouped_batches(examples: list[dict], batch_size: int, seed: int, epoch: int) -> Iterator[list[dict]]:
    """Shuffle, then sort within windows of 50 batches by length, then shuffle the batches: the same order
    on every rank for a seed and epoch, so a resumed run can skip the batches it has seen.

    Not transformers' ``get_length_grouped_indices`` / ``LengthGroupedSampler``: they never shuffle the
    batches (each mega-batch runs longest to shortest), and on a small set their mega-batch shrinks to one
    batch, so little is grouped.
    """
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

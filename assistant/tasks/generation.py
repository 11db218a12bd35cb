"""Model calls shared by the task modules: greedy generation from chat messages (one or a
batch) and batched scoring of candidate answers. Every use of the model holds ``loaded.lock``;
a batch holds it for that batch only, so chat replies can interleave with a long file job.

    python -m assistant.tasks.generation "Name three colours."   # one greedy reply, default model
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from assistant.errors import InputError
from assistant.loading import LoadedModel

Messages = list[dict]
Progress = Callable[[int, int], None]  # (done, total)


def encode_messages(tokenizer, messages: Messages) -> list[int]:
    """Token ids of the chat prompt, ending with the assistant generation prompt."""
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    return list(encoded)


def check_fits(loaded: LoadedModel, prompt_tokens: int, new_tokens: int) -> None:
    """Raise InputError when the prompt plus the answer cannot fit the model's context."""
    budget = loaded.context_window - new_tokens
    if prompt_tokens > budget:
        raise InputError(
            f"The input is too long: its prompt needs {prompt_tokens} tokens, but this model's "
            f"{loaded.context_window}-token context leaves {budget} after the {new_tokens} reserved for "
            "the answer. Shorten the text or split it into smaller pieces."
        )


class _StopWhen(StoppingCriteria):
    """Ends each sequence once ``predicate(new text so far)`` is true (per row of a batch)."""

    def __init__(self, tokenizer, prompt_length: int, predicate: Callable[[str], bool]):
        self.tokenizer, self.prompt_length, self.predicate = tokenizer, prompt_length, predicate

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([self.predicate(text) for text in texts], dtype=torch.bool, device=input_ids.device)


def ends_first_line(text: str) -> bool:
    """Stop predicate: the answer has a non-empty first line and has moved past it."""
    stripped = text.lstrip()
    return "\n" in stripped and bool(stripped.split("\n", 1)[0].strip())


def repeats_a_line(text: str) -> bool:
    """Stop predicate: a finished line repeats an earlier one (small models loop)."""
    finished = [line.strip() for line in text.split("\n")[:-1] if line.strip()]
    return len(finished) != len(set(finished))


_LOOP = re.compile(r"(.{1,20}?)\1{3,}$", re.S)


def stuck_in_a_loop(text: str) -> bool:
    """Stop predicate: the answer ends with a short piece repeated 4+ times over 12+ characters
    ("enenenenenen", "kopf-kopf-kopf-kopf-"): a small model that loops never recovers."""
    match = _LOOP.search(text[-240:])
    return bool(match) and len(match.group(0)) >= 12


def generate_batch(
    loaded: LoadedModel,
    conversations: Sequence[Messages],
    max_new_tokens: int,
    stop: Callable[[str], bool] | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> list[str]:
    """Greedy replies to many chat prompts, batched (left-padded) and returned in input order.

    Prompts are sorted by length so a batch wastes little on padding. Raises InputError if a
    prompt does not fit the context window (checked for all before any generation starts).
    """
    tokenizer = loaded.tokenizer
    encoded = [encode_messages(tokenizer, messages) for messages in conversations]
    for ids in encoded:
        check_fits(loaded, len(ids), max_new_tokens)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    replies: list[str] = [""] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = loaded.model
    for first in range(0, len(order), batch_size):
        chunk = order[first:first + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        rows = [[pad_id] * (width - len(encoded[i])) + encoded[i] for i in chunk]
        mask = [[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk]
        input_ids = torch.tensor(rows, device=model.device)
        criteria = StoppingCriteriaList([_StopWhen(tokenizer, width, stop)] if stop else [])
        with loaded.lock, torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.tensor(mask, device=model.device),
                max_new_tokens=max_new_tokens,
                do_sample=False, temperature=None, top_p=None, top_k=None,
                stopping_criteria=criteria,
                pad_token_id=pad_id,
            )
        texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
        for index, text in zip(chunk, texts):
            replies[index] = text
        if progress:
            progress(min(first + batch_size, len(order)), len(order))
    return replies


def generate(loaded: LoadedModel, messages: Messages, max_new_tokens: int,
             stop: Callable[[str], bool] | None = None) -> str:
    """One greedy reply to one chat prompt."""
    return generate_batch(loaded, [messages], max_new_tokens, stop=stop, batch_size=1)[0]


def score_continuations(loaded: LoadedModel, prompt_ids: list[int],
                        continuations: Sequence[Sequence[int]]) -> list[float]:
    """Sum of log-probabilities of each continuation's tokens given the prompt.

    Two forward passes, whatever the number of continuations: the prompt once (its KV cache is
    then repeated for every candidate), and all continuations together as one right-padded batch.
    Right padding needs no attention mask: causal attention never lets a real token see the pad
    after it, and the scores read only real positions.
    """
    if len(prompt_ids) < 2:
        raise ValueError("score_continuations needs a prompt of at least 2 tokens (a chat-templated prompt).")
    if not continuations or any(len(c) == 0 for c in continuations):
        raise ValueError("every continuation needs at least one token")
    model = loaded.model
    pad_id = loaded.tokenizer.pad_token_id or 0
    longest = max(len(c) for c in continuations)
    # Row i: the last prompt token, then continuation i, then padding.
    rows = [[prompt_ids[-1], *c] + [pad_id] * (longest - len(c)) for c in continuations]
    with loaded.lock, torch.inference_mode():
        prefix = torch.tensor([prompt_ids[:-1]], device=model.device)
        cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).cache  # only the cache is needed
        cache.batch_repeat_interleave(len(rows))
        logits = model(input_ids=torch.tensor(rows, device=model.device), cache=cache).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    scores = []
    for i, tokens in enumerate(continuations):
        picked = logprobs[i, torch.arange(len(tokens)), torch.tensor(list(tokens), device=logprobs.device)]
        scores.append(float(picked.sum()))
    return scores


def softmax(values: Sequence[float]) -> list[float]:
    """Numerically stable softmax of plain floats."""
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


if __name__ == "__main__":
    from assistant.loading import load_causal_lm

    prompt = " ".join(sys.argv[1:]) or "Name three colours."
    print(generate(load_causal_lm("smollm2-135m-instruct"), [{"role": "user", "content": prompt}], 64))

"""Model calls shared by the task modules: greedy generation from chat messages (one or a
batch) and batched scoring of candidate answers, on whichever engine serves ``loaded``
(``assistant.core.engines``). Every use of the model holds ``loaded.lock``; a batch holds it for
that batch only, so chat replies can interleave with a long file job.

    python -m assistant.core.generation "Name three colours."   # one greedy reply, default model
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence

from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel

Messages = list[dict]
Progress = Callable[[int, int], None]  # (done, total)


def encode_messages(tokenizer, messages: Messages, tools: list[dict] | None = None, *,
                    add_generation_prompt: bool = True) -> list[int]:
    """Token ids of the chat template applied to ``messages``, by default ending with the assistant generation
    prompt (``tools``: for templates that render them). The one place that unwraps what
    ``apply_chat_template`` returns (a list, or a BatchEncoding / dict with ``input_ids``)."""
    extra = {"tools": tools} if tools is not None else {}
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                            **extra)
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
    """Greedy replies to many chat prompts, in input order: batched (left-padded) on the transformers
    engine, decoded together in the engine's running batch on llama.cpp (beside other users' chats).

    Prompts are sorted by length so a batch wastes little on padding. Raises InputError if a
    prompt does not fit the context window (checked for all before any generation starts).
    """
    tokenizer = loaded.tokenizer
    encoded = [encode_messages(tokenizer, messages) for messages in conversations]
    for ids in encoded:
        check_fits(loaded, len(ids), max_new_tokens)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    replies: list[str] = [""] * len(encoded)
    for first in range(0, len(order), batch_size):
        chunk = order[first:first + batch_size]
        with loaded.lock:
            texts = loaded.engine.greedy([encoded[i] for i in chunk], max_new_tokens, stop)
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
    """Sum of log-probabilities of each continuation's tokens given the prompt (one float each)."""
    if len(prompt_ids) < 2:
        raise ValueError("score_continuations needs a prompt of at least 2 tokens (a chat-templated prompt).")
    if not continuations or any(len(c) == 0 for c in continuations):
        raise ValueError("every continuation needs at least one token")
    with loaded.lock:
        return loaded.engine.score(list(prompt_ids), [list(c) for c in continuations])


def softmax(values: Sequence[float]) -> list[float]:
    """Numerically stable softmax of plain floats."""
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


if __name__ == "__main__":
    from assistant.core.loading import load_served_model

    prompt = " ".join(sys.argv[1:]) or "Name three colours."
    print(generate(load_served_model("smollm2-135m-instruct"), [{"role": "user", "content": prompt}], 64))

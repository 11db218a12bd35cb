"""Trimming a long history to the context window (``Chat.prompt_ids``) on the tiny Llama: the same turns
are kept as by dropping the oldest one at a time, and a 2,000-message history costs a few full encodings,
not one per dropped turn.

    pytest tests/test_history_trim.py -q
"""

from __future__ import annotations

import random
import time

import pytest

from assistant.chat import Chat
from assistant.core.errors import InputError
from assistant.core.generation import encode_messages


@pytest.fixture(scope="module")
def chat(tiny_loaded):
    return Chat(tiny_loaded)


def one_turn_at_a_time(chat: Chat, messages: list[dict], max_new_tokens: int):
    """The specification: drop the oldest turn until the prompt fits, never keeping an assistant turn first."""
    budget = chat.loaded.context_window - max_new_tokens
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns, dropped = messages[len(system):], 0
    while True:
        ids = encode_messages(chat.tokenizer, system + turns)
        if len(ids) <= budget:
            return ids, dropped
        if len(turns) <= 1:
            return None, None
        turns, dropped = turns[1:], dropped + 1
        while len(turns) > 1 and turns[0]["role"] != "user":
            turns, dropped = turns[1:], dropped + 1


def random_conversation(rng: random.Random, length: int) -> list[dict]:
    messages = [{"role": "system", "content": "Be brief."}] if rng.random() < 0.5 else []
    for i in range(length):
        role = rng.choice(["user", "user", "assistant"])  # runs of one role happen (edited or imported chats)
        messages.append({"role": role, "content": " ".join(["adapters"] * rng.randint(1, 60)) + f" {i}"})
    return messages


@pytest.mark.parametrize("seed", range(12))
def test_the_kept_turns_match_dropping_one_at_a_time(chat, seed):
    rng = random.Random(seed)
    messages = random_conversation(rng, rng.randint(1, 40))
    new_tokens = rng.choice([16, 64, 200])
    expected_ids, expected_dropped = one_turn_at_a_time(chat, messages, new_tokens)
    if expected_ids is None:
        with pytest.raises(InputError, match="Your message is too long"):
            chat.prompt_ids(messages, new_tokens)
    else:
        assert chat.prompt_ids(messages, new_tokens) == (expected_ids, expected_dropped)


def test_two_thousand_messages_cost_a_few_encodings(chat):
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} about fine-tuning adapters"}
               for i in range(2001)]
    started = time.perf_counter()
    encode_messages(chat.tokenizer, history)
    one_encoding = time.perf_counter() - started
    started = time.perf_counter()
    ids, dropped = chat.prompt_ids(history, 32)
    trimming = time.perf_counter() - started
    assert len(ids) <= chat.loaded.context_window - 32 and dropped > 1900 and dropped % 2 == 0
    # Dropping one turn at a time encodes ~1,000 ever shorter histories: some 500 full encodings.
    assert trimming < 30 * one_encoding + 1.0, (trimming, one_encoding)

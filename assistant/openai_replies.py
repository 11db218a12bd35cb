"""How ``/v1`` turns a chat's growing text into replies: pieces cut at stop sequences, whole replies (``n`` of them
generated at once), server-sent event lines, token usage, and a stream's place in line for the model's slots.

    replies = complete_each(chat, ids, settings, stops, adapter, threading.Event(), count=3)
    for line in chat_events(chat, ids, settings, stops, adapter, meta, threading.Event()): ...

``chat`` is the served model's ``assistant.chat.Chat``. Used by ``assistant.openai_api``; tests:
``pytest tests/test_openai_api.py tests/test_openai_limits.py -q``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from assistant.core.errors import UserError
from assistant.openai_requests import ApiError


@dataclass
class EventStream:
    """A streamed reply's server-sent event lines, and its place in line when it arrived (``queue_position``)."""

    lines: Iterator[str]
    queue_position: int | None

    def __iter__(self) -> Iterator[str]:
        return self.lines


def queue_position(chat) -> int | None:
    """0 when one of the model's slots is free for a new request, k when it will be the k-th waiting for one;
    None on an engine without slots (transformers: one request at a time behind the model lock)."""
    scheduler = getattr(chat.loaded.engine, "scheduler", None)
    if scheduler is None:
        return None
    return max(0, scheduler.busy() - scheduler.slots + 1)


def usage(chat, ids: list[int], texts: list[str]) -> dict:
    """OpenAI's usage block: the prompt counted once, the tokens of every choice."""
    completion = sum(len(chat.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
    return {"prompt_tokens": len(ids), "completion_tokens": completion, "total_tokens": len(ids) + completion}


def pieces(chat, ids, settings, stops, adapter, stop_event) -> Iterator[tuple[str, str | None]]:
    """(new text, finish reason) as the reply grows; the reason comes with the last piece."""
    hold = max((len(stop) - 1 for stop in stops), default=0)  # a tail that may begin a stop sequence
    sent = text = ""
    try:
        for text in chat.stream_ids(ids, settings, stop_event, adapter):
            cut = min((text.find(stop) for stop in stops if stop in text), default=-1)
            if cut >= 0:
                yield text[len(sent):max(cut, len(sent))], "stop"
                return
            if len(text) - hold > len(sent):
                yield text[len(sent):len(text) - hold], None
                sent = text[:len(text) - hold]
    except UserError as exc:
        raise ApiError(400, str(exc)) from None
    finally:
        stop_event.set()  # also when the client went away mid-stream
    produced = len(chat.tokenizer(text, add_special_tokens=False)["input_ids"])
    yield text[len(sent):], "length" if produced >= settings.max_new_tokens else "stop"


def complete(chat, ids, settings, stops, adapter, stop_event) -> tuple[str, str]:
    """The whole reply and its finish reason."""
    text, finish = "", "stop"
    for piece, reason in pieces(chat, ids, settings, stops, adapter, stop_event):
        text, finish = text + piece, reason or finish
    return text, finish


def complete_each(chat, ids, settings, stops, adapter, stop_event, count: int) -> list[tuple[str, str]]:
    """``count`` replies to ``ids``, generated at once (on llama.cpp they share the batch). With a ``seed``, choice i
    samples with seed + i, so the choices differ and the request stays reproducible. Each choice stops on its own
    event (a finished choice frees only its sequence); ``stop_event`` (the client went away) stops them all, and
    a choice that fails stops the others: the request fails as a whole."""
    if count == 1:
        return [complete(chat, ids, settings, stops, adapter, stop_event)]
    replies: list = [None] * count
    stops_each = [threading.Event() for _ in range(count)]

    def one(index: int) -> None:
        seeded = replace(settings, seed=None if settings.seed is None else int(settings.seed) + index)
        try:
            replies[index] = complete(chat, ids, seeded, stops, adapter, stops_each[index])
        except BaseException as exc:  # noqa: BLE001  (re-raised below, in the request's thread)
            replies[index] = exc
            stop_event.set()

    workers = [threading.Thread(target=one, args=(i,), name=f"v1-choice-{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        while worker.is_alive():
            worker.join(timeout=0.1)
            if stop_event.is_set():
                for event in stops_each:
                    event.set()
    failed = next((r for r in replies if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    return replies


def chat_events(chat, ids, settings, stops, adapter, meta: dict, stop_event, finished=None) -> Iterator[str]:
    """The server-sent event lines of a streamed chat completion; ``finished(text)`` once the reply is whole."""
    def chunk(delta: dict, finish=None) -> str:
        payload = {**meta, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        finish, text = "stop", ""
        for piece, reason in pieces(chat, ids, settings, stops, adapter, stop_event):
            if piece:
                text += piece
                yield chunk({"content": piece})
            finish = reason or finish
        if finished is not None:
            finished(text)
        yield chunk({}, finish)
    except ApiError as exc:
        yield f"data: {json.dumps(exc.body())}\n\n"
    yield "data: [DONE]\n\n"

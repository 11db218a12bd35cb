"""What this server produced recently, by id: the only replies a rating may name.

    log = ResponseLog()
    produced = log.remember("session-or-login", conversation, "the reply", model="qwen", adapter=None)
    log.get(produced.id)                                   # -> Produced, or None (never produced, or forgotten)
    log.find("session-or-login", conversation, "the reply")  # the Chat tab's thumbs: matched on the session's replies

Kept in memory, the newest ``capacity`` replies: a restart forgets them, so a reply is rated before the server
restarts. On purpose: a reply nobody rated is never written to disk (the server keeps no log of conversations;
only a rating, which the user chose to send, is stored, in ``assistant.feedback.store``). Ids are
random (``chat-`` + 24 hex digits, or the ``/v1`` response's own ``chatcmpl-...`` id), so an id cannot be
guessed. Tests: ``pytest tests/test_feedback_store.py -q``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from assistant.chat import message_text

CAPACITY = 5000


@dataclass(frozen=True)
class Produced:
    id: str
    session: str
    """The browser session (or login name) the reply went to; ``v1`` for the OpenAI-compatible API."""
    conversation: tuple
    """The messages the reply answers ({"role", "content"} with plain-text content), oldest first."""
    reply: str
    model: str
    adapter: str | None = None
    source: str = "chat"
    """chat (the model), faq (an FAQ entry), tool (agent mode) or v1."""
    created: float = field(default_factory=time.time)


def plain_turns(messages) -> list[dict]:
    """User and assistant turns as plain text; a tool step (a message with a title) and system prompts left out."""
    turns = []
    for message in messages or []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        if (message.get("metadata") or {}).get("title"):
            continue
        turns.append({"role": message["role"], "content": message_text(message.get("content")).strip()})
    return turns


class ResponseLog:
    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self._items: OrderedDict[str, Produced] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, session: str, conversation, reply: str, model: str, adapter: str | None = None,
                 source: str = "chat", response_id: str | None = None) -> Produced:
        messages = tuple({"role": m["role"], "content": message_text(m.get("content"))} for m in conversation
                         if isinstance(m, dict) and m.get("role") in ("system", "user", "assistant"))
        produced = Produced(response_id or f"chat-{secrets.token_hex(12)}", session, messages, reply, model,
                            adapter or None, source)
        with self._lock:
            self._items[produced.id] = produced
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return produced

    def get(self, response_id: str) -> Produced | None:
        with self._lock:
            return self._items.get(response_id)

    def newest(self) -> Produced | None:
        with self._lock:
            return next(reversed(self._items.values()), None)

    def find(self, session: str, history, reply: str) -> Produced | None:
        """The newest reply produced for ``session`` with this text, after these turns (``history``: the chat
        as the browser shows it up to the reply, tool steps included)."""
        wanted = plain_turns(history)
        text = reply.strip()
        with self._lock:
            candidates = [p for p in reversed(self._items.values()) if p.session == session]
        for produced in candidates:
            if produced.reply.strip() == text and plain_turns(produced.conversation) == wanted:
                return produced
        return None

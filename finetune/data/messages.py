"""Chat turns -> canonical messages [{"role": "system"|"user"|"assistant", "content": str}, ...].

Accepts OpenAI-style ``{role, content}`` turns (content may be a list of ``{"type": "text"}`` parts) and
ShareGPT ``{from, value}`` turns (human -> user, gpt -> assistant), as a list or a JSON string (CSV cells).
Run ``pytest tests/test_data_validation.py -q -k messages``.
"""

from __future__ import annotations

import json
from typing import Any

ROLE_NAMES = {"user": "user", "human": "user", "system": "system", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant", "chatgpt": "assistant", "bing": "assistant",
              "bard": "assistant", "ai": "assistant"}


def _turns(value: Any) -> list | None:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, list) else None


def _content(value: Any) -> Any:
    if isinstance(value, list):  # OpenAI content parts: keep them only when all are text
        parts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str)) if len(parts) == len(value) else None
    return value


def to_messages(value: Any) -> tuple[list[dict] | None, str | None, list[str]]:
    """(messages, None, warnings) or (None, error, []) for one conversation."""
    turns = _turns(value)
    if not turns:
        return None, ("is missing" if value is None else "has no turns" if turns == [] else
                      "is not a list of {role, content} turns"), []
    messages = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            return None, f"turn {i} is not an object with role and content", []
        role, content = turn.get("role", turn.get("from")), _content(turn.get("content", turn.get("value")))
        mapped = ROLE_NAMES.get(role.strip().lower()) if isinstance(role, str) else None
        if mapped is None:
            return None, f"turn {i} has role {role!r}; use system, user or assistant (ShareGPT: human, gpt)", []
        if not isinstance(content, str) or not content.strip():
            return None, f"turn {i} ({mapped}) has {'no text' if content in (None, '') else 'empty or non-text content'}", []
        try:
            content.encode("utf-8")
        except UnicodeEncodeError:
            return None, f"turn {i} contains an invalid character (an unpaired \\u surrogate escape); remove it", []
        messages.append({"role": mapped, "content": content.strip()})
    kinds = [m["role"] for m in messages]
    if "assistant" not in kinds:
        return None, "has no assistant turn: there is no reply to learn from", []
    warnings = []
    if "system" in kinds[1:]:
        warnings.append("a system message that is not the first turn")
    if kinds[-1] != "assistant":
        warnings.append("the last turn is not from the assistant; nothing after the last reply is learned")
    return messages, None, warnings

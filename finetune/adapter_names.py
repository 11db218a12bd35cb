"""Adapter names: which names are safe as a folder name on every platform, and the next free one.

    sanitize_name(" sentiment-v1 ")        # "sentiment-v1"; InputError with a suggested name otherwise
    candidate_names("sentiment-v1")        # "sentiment-v1", "sentiment-v1-2", "sentiment-v1-3", ...

Used by ``finetune.adapters`` (every name passes here before it touches a path) and the fine-tune config.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import count

from assistant.core.errors import InputError

MAX_NAME_LENGTH = 64

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})


def sanitize_name(name: str) -> str:
    """``name`` without surrounding spaces if it is a safe adapter folder name; else InputError with a fix.

    Allowed: 1-64 ASCII letters, digits, ``-``, ``_``, ``.``; first character a letter, digit or ``_``;
    no ``..``, no trailing ``.``; not a Windows device name (``con``, ``nul``, ``com1``...).
    """
    if not isinstance(name, str):
        raise InputError(f"Adapter name must be text, not {type(name).__name__}.")
    clean = name.strip()
    rule = ("use 1-64 letters (a-z, A-Z), digits, '-', '_' or '.', starting with a letter, digit or '_'"
            f", e.g. {_suggest_name(clean)!r}")
    if not clean:
        raise InputError(f"Adapter name is empty: {rule}.")
    shown = repr(clean if len(clean) <= 70 else clean[:67] + "...")
    bad = sorted(set(_NAME_CHARS.sub("", clean)))
    if bad:
        problem = "contains " + ", ".join(repr(c) for c in bad)
    elif not (clean[0].isalnum() or clean[0] == "_"):
        problem = f"starts with {clean[0]!r}"
    elif ".." in clean or clean.endswith("."):
        problem = "contains '..' or ends with '.'"
    elif len(clean) > MAX_NAME_LENGTH:
        problem = f"is {len(clean)} characters long (at most {MAX_NAME_LENGTH})"
    elif clean.split(".")[0].lower() in _WINDOWS_DEVICES:
        problem = "is a reserved device name on Windows"
    else:
        return clean
    raise InputError(f"Adapter name {shown} {problem}: {rule}.")


def _suggest_name(text: str) -> str:
    suggestion = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", text)).strip(".-")
    suggestion = suggestion[:MAX_NAME_LENGTH].rstrip(".-")
    if not suggestion or suggestion.split(".")[0].lower() in _WINDOWS_DEVICES:
        return "my-adapter"
    return suggestion


def candidate_names(requested: str) -> Iterator[str]:
    yield requested
    for number in count(2):
        suffix = f"-{number}"
        yield requested[: MAX_NAME_LENGTH - len(suffix)] + suffix

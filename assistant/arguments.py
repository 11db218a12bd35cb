"""Checks for values that arrive from outside (API bodies, form fields): the right type, a finite
number in range, text that is valid Unicode. Each failure is an InputError naming the argument and
what to send instead, so no hostile value reaches a handler and ends as a traceback.

    from assistant.arguments import text_arg, number_arg
    message = text_arg(message, "message")
    max_new_tokens = number_arg(max_new_tokens, "max_new_tokens", 1, 8192, integer=True)
"""

from __future__ import annotations

import math

from assistant.core.errors import InputError


def _kind(value) -> str:
    if value is None:
        return "nothing (null)"
    name = {"int": "whole number", "float": "number", "str": "text", "list": "list", "dict": "object",
            "bool": "true/false value"}.get(type(value).__name__, type(value).__name__)
    return f"a {name}"


def text_arg(value, name: str, *, optional: bool = False) -> str:
    """``value`` if it is text that encodes as UTF-8; "" for None when ``optional``."""
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise InputError(f"'{name}' must be text; got {_kind(value)}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"'{name}' holds characters that are not valid Unicode (an unpaired surrogate such as "
                         "\\ud800); send UTF-8 text.") from None
    return value


def _num(value: float) -> str:
    """2048, not 2.048e+03; 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def number_arg(value, name: str, low: float, high: float, *, integer: bool = False) -> float | int:
    """``value`` as a finite number in [low, high] (an int when ``integer``); numeric strings are accepted."""
    shown = f"a whole number from {_num(low)} to {_num(high)}" if integer else \
        f"a number from {_num(low)} to {_num(high)}"
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict, tuple)):
        raise InputError(f"'{name}' must be {shown}; got {_kind(value)}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"'{name}' must be {shown}; got {str(value)[:40]!r}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"'{name}' must be {shown}; got {number if not math.isfinite(number) else _num(number)}.")
    if integer:
        if number != int(number):
            raise InputError(f"'{name}' must be {shown}; got {_num(number)}.")
        return int(number)
    return number


def bool_arg(value, name: str) -> bool:
    """``value`` as a bool: true/false, 1/0, or the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise InputError(f"'{name}' must be true or false; got {_kind(value) if not isinstance(value, str) else repr(value[:40])}.")

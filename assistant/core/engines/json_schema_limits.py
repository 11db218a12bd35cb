"""Bounds on a JSON Schema before anything is built from it (``json_grammar`` checks every schema here).

llama-cpp-python's schema converter writes repetitions out in full, so ``{"minLength": 1000000000}``
becomes a grammar of billions of characters, and a wide ``enum`` makes every sampled token test
thousands of grammar branches while the model lock is held. ``check_schema`` walks the schema
once, without recursion, and raises ``InputError`` naming the limit and where it was passed.

    check_schema({"type": "string", "maxLength": 80})         # fine
    check_schema({"type": "string", "minLength": 10**9})      # InputError: at most 1000 ...
"""

from __future__ import annotations

import json
import re

from assistant.core.errors import InputError

MAX_SCHEMA_CHARS = 32_768
"""The schema as compact JSON: a large tool set fits; the prompt carries it too, in a 4096-token context."""
MAX_DEPTH = 32
"""Objects and lists nested in the schema document (about 15 levels of nested properties)."""
MAX_REPEAT = 1000
"""minLength / maxLength / minItems / maxItems and {m,n} in a pattern: each is written out in the grammar."""
MAX_PROPERTIES = 128
"""Properties of one object: optional ones cost the converter a rule per suffix (quadratic)."""
MAX_ENUM_VALUES = 256
"""enum values in the whole schema: each value is a grammar branch tried on every sampled token."""
MAX_ALTERNATIVES = 128
"""anyOf / oneOf / allOf members in the whole schema (a required tool call is one per tool)."""
MAX_PATTERN_CHARS = 256
"""A ``pattern`` regular expression."""
MAX_GRAMMAR_CHARS = 262_144
"""The GBNF grammar the converter writes (checked by ``json_grammar`` after converting)."""

_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else",
               "additionalItems", "unevaluatedItems", "unevaluatedProperties")
_BRACES = re.compile(r"\{([^}]*)\}")


def _where(path: list) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "the top level"


def _count(value, key: str, path: list) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPEAT:
        raise InputError(f"The JSON schema's '{key}' at {_where(path)} is {json.dumps(value)[:40]}; this server "
                         f"allows a whole number from 0 to {MAX_REPEAT} (longer constrained values do not fit a reply).")


def _pattern(value, path: list) -> None:
    if not isinstance(value, str) or len(value) > MAX_PATTERN_CHARS:
        raise InputError(f"The JSON schema's 'pattern' at {_where(path)} must be a regular expression of at most "
                         f"{MAX_PATTERN_CHARS} characters.")
    for inside in _BRACES.findall(value):
        for number in inside.split(","):
            try:
                times = int(number)  # read as the converter reads it ("1_000_000" and "+5" are numbers too)
            except ValueError:
                continue
            if abs(times) > MAX_REPEAT:
                raise InputError(f"The JSON schema's 'pattern' at {_where(path)} repeats {number.strip()} times; this "
                                 f"server allows at most {MAX_REPEAT} repetitions in a quantifier.")


def _children(node: dict, path: list, depth: int) -> list:
    """(value, path, depth, is_schema) of what ``node`` holds: subschemas, maps of them, and plain data."""
    found = []
    for key, value in node.items():
        step = [*path, key]
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            found.append((value, step, depth + 1, False))
            found.extend((sub, [*step, name], depth + 2, True) for name, sub in value.items())
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            found.append((value, step, depth + 1, False))
            found.extend((sub, [*step, i], depth + 2, True) for i, sub in enumerate(value))
        else:
            found.append((value, step, depth + 1, key in _SUBSCHEMAS))
    return found


def check_schema(schema) -> None:
    """Raise InputError when ``schema`` exceeds a limit above (its size, depth, lengths, enums, branches)."""
    if not isinstance(schema, dict):
        raise InputError("The JSON schema must be an object, such as {\"type\": \"object\", \"properties\": {...}}.")
    try:
        size = len(json.dumps(schema, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        raise InputError(f"The JSON schema is nested more than {MAX_DEPTH} levels deep or holds values JSON "
                         "cannot write; simplify it.") from None
    if size > MAX_SCHEMA_CHARS:
        raise InputError(f"The JSON schema is {size} characters long; this server allows at most {MAX_SCHEMA_CHARS}.")
    enum_values = alternatives = 0
    schema_paths, refs = set(), []
    pending = [(schema, [], 1, True)]
    while pending:
        node, path, depth, is_schema = pending.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"The JSON schema is nested more than {MAX_DEPTH} levels deep (at {_where(path)}); "
                             "flatten it.")
        if isinstance(node, list):
            pending.extend((item, [*path, i], depth + 1, False) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if not is_schema:
            pending.extend((value, [*path, key], depth + 1, False) for key, value in node.items())
            continue
        schema_paths.add(tuple(path))
        if "$ref" in node:
            refs.append((node["$ref"], [*path, "$ref"]))
        for key in _COUNTS:
            if key in node:
                _count(node[key], key, [*path, key])
        if "pattern" in node:
            _pattern(node["pattern"], [*path, "pattern"])
        if isinstance(node.get("enum"), list):
            enum_values += len(node["enum"])
        alternatives += sum(len(node[key]) for key in ("anyOf", "oneOf", "allOf") if isinstance(node.get(key), list))
        if isinstance(node.get("properties"), dict) and len(node["properties"]) > MAX_PROPERTIES:
            raise InputError(f"The JSON schema's object at {_where(path)} has {len(node['properties'])} properties; "
                             f"this server allows at most {MAX_PROPERTIES} per object.")
        if enum_values > MAX_ENUM_VALUES:
            raise InputError(f"The JSON schema lists more than {MAX_ENUM_VALUES} enum values in all; this server "
                             f"allows at most {MAX_ENUM_VALUES} (each is tried on every generated token).")
        if alternatives > MAX_ALTERNATIVES:
            raise InputError(f"The JSON schema has more than {MAX_ALTERNATIVES} anyOf / oneOf / allOf members in "
                             f"all; this server allows at most {MAX_ALTERNATIVES}.")
        pending.extend(_children(node, path, depth))
    for ref, path in refs:
        _reference(ref, path, schema_paths)


def _reference(ref, path: list, schema_paths: set) -> None:
    """A local ``$ref`` must lead to a place checked as a schema: the converter builds whatever it finds there."""
    if isinstance(ref, str) and ref.startswith("#/"):
        if tuple(ref.split("#")[-1].split("/")[1:]) in schema_paths:
            return
        raise InputError(f"The JSON schema's '$ref' at {_where(path)} must point to a schema in this document, such "
                         f"as \"#/$defs/<name>\"; got {json.dumps(ref)[:80]}.")

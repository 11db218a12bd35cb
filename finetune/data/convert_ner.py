"""NER rows: ``{"tokens": [str], "tags": [str]}`` in IOB2 (BMES/BIOES and IOB1 converted), each problem reported
at the token's own line for CoNLL files.

Used by ``finetune.data.canonical``; run ``pytest tests/test_data_validation.py -q -k ner``.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from finetune.data.columns import ColumnMapping
from finetune.data.conversion import Conversion, unicode_ok
from finetune.data.table import Table
from finetune.data.tags import entity_type, scheme_of, tag_hint, to_iob2


def as_list(value: Any) -> list | None:
    """A list from a list, a JSON / Python list literal, or a whitespace-separated string."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                continue
            if isinstance(parsed, list):
                return parsed
    return text.split()


def ner_rows(table: Table, mapping: ColumnMapping, out: Conversion, entity_types: set[str] | None) -> None:
    tok_col, tag_col = mapping.roles["tokens"], mapping.roles["tags"]
    per_line = table.format == "conll"  # token i of a sentence is on line start + i
    pending = []
    for record, number in zip(table.records, table.row_numbers):
        tokens, tags = as_list(record.get(tok_col)), as_list(record.get(tag_col))
        if tokens is None or tags is None:
            column = tok_col if tokens is None else tag_col
            out.error(number, column, "is missing" if record.get(column) is None else "is not a list")
            continue
        if not tokens:
            out.error(number, tok_col, "empty sentence (no tokens)")
            continue
        if len(tokens) != len(tags):
            out.error(number, tag_col, f"{len(tokens)} tokens but {len(tags)} tags; every token needs exactly one tag")
            continue
        names = mapping.label_names
        tags = [names.get(str(t), str(t)) if names else t for t in tags]
        bad = next((i for i, t in enumerate(tags) if not isinstance(t, str) or isinstance(tokens[i], (list, dict))), None)
        if bad is not None:
            out.error(number + bad if per_line else number, tag_col, f"tag {tags[bad]!r} is not text; tags must be "
                      "names like B-PER (give label names in the mapping for numeric tags)")
            continue
        tokens = [str(t) for t in tokens]
        if not unicode_ok(out, " ".join(tokens + tags), number, tok_col):
            continue
        pending.append((tokens, tags, number))
    if scheme_of([tags for _, tags, _ in pending]) == "bioes":
        out.notes.append("tags use the BMES/BIOES scheme; converted to IOB2")
    fixed = sum(_ner_row(tokens, tags, number, per_line, tag_col, out, entity_types) for tokens, tags, number in pending)
    if fixed:
        out.notes.append(f"{fixed} entities started with I- instead of B- (IOB1?); fixed to B- (IOB2)")


def _ner_row(tokens, tags, number, per_line, tag_col, out: Conversion, entity_types) -> int:
    """Adds the row unless it has errors; returns how many I- tags were fixed to B-."""
    def where(i: int) -> tuple[int, str]:
        return (number + i, "") if per_line else (number, f" (token {i + 1})")

    missing = next((i for i, t in enumerate(tags) if t == ""), None)
    if missing is not None:
        line, token = where(missing)
        out.error(line, tag_col, f"token '{tokens[missing]}'{token} has no tag")
        return 0
    converted = to_iob2(tags)
    if converted.unknown:
        i = converted.unknown[0]
        line, token = where(i)
        more = f" ({len(converted.unknown)} such tags in this sentence)" if len(converted.unknown) > 1 else ""
        out.error(line, tag_col, f"tag '{tags[i]}' of token '{tokens[i]}'{token} is not a tag like O, B-TYPE, I-TYPE (or BMES/BIOES)"
                  f"{tag_hint(tags[i])}{more}")
        return 0
    if entity_types:
        outside = next((i for i, t in enumerate(converted.tags) if t != "O" and entity_type(t) not in entity_types), None)
        if outside is not None:
            line, token = where(outside)
            out.error(line, tag_col, f"tag '{tags[outside]}'{token} has entity type '{entity_type(converted.tags[outside])}'"
                      f", which is not one of the allowed types ({', '.join(sorted(entity_types))})")
            return 0
    if converted.started_entity:
        i = converted.started_entity[0]
        line, token = where(i)
        out.warning(line, tag_col, f"'{tags[i]}'{token} continues no entity (no B- before it); fixed to "
                    f"'{converted.tags[i]}'" + (f" ({len(converted.started_entity)} fixes in this sentence)"
                                                 if len(converted.started_entity) > 1 else ""))
    out.add({"tokens": tokens, "tags": converted.tags}, number)
    return len(converted.started_entity)

"""Rows made of texts: translation ``{"source", "target"}``, FAQ ``{"question", "answer"}``, preference pairs
``{"prompt", "chosen", "rejected"}`` or KTO rows ``{"prompt", "completion", "label"}``, instruction
``{"messages": [...]}`` and unsupervised ``{"text"}``.

Used by ``finetune.data.canonical``; run ``pytest tests/test_data_validation.py -q``.
"""

from __future__ import annotations

from typing import Any

from finetune.data.columns import ColumnMapping
from finetune.data.conversion import Conversion, cell_text, is_blank
from finetune.data.messages import to_messages
from finetune.data.table import Table


def _text_pairs(table: Table, out: Conversion, first_col: str, second_col: str):
    """(record, row number, first text, second text) of every row that has both; an empty row is skipped with
    a warning, a row with one bad text is reported by ``cell_text``."""
    for record, number in zip(table.records, table.row_numbers):
        if is_blank(record.get(first_col)) and is_blank(record.get(second_col)):
            out.warning(number, None, "empty row skipped")
            continue
        first = cell_text(out, record.get(first_col), number, first_col)
        second = cell_text(out, record.get(second_col), number, second_col)
        if first is not None and second is not None:
            yield record, number, first, second


def translation_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    src_col, tgt_col = mapping.roles["source"], mapping.roles["target"]
    for _record, number, source, target in _text_pairs(table, out, src_col, tgt_col):
        if source == target:
            out.warning(number, tgt_col, "target is identical to the source (not translated?)")
        out.add({"source": source, "target": target}, number)


def faq_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    q_col, a_col, c_col = mapping.roles["question"], mapping.roles["answer"], mapping.roles.get("context")
    for record, number, question, answer in _text_pairs(table, out, q_col, a_col):
        context = record.get(c_col) if c_col else None
        if not is_blank(context) and not isinstance(context, (list, dict)):
            question = f"{question}\n\n{str(context).strip()}"
        out.add({"question": question, "answer": answer}, number)


def preference_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    if "completion" in mapping.roles:
        return _unpaired(table, mapping, out)
    columns = [mapping.roles[role] for role in ("prompt", "chosen", "rejected")]
    for record, number in zip(table.records, table.row_numbers):
        if all(is_blank(record.get(column)) for column in columns):
            out.warning(number, None, "empty row skipped")
            continue
        prompt, chosen, rejected = (cell_text(out, record.get(column), number, column) for column in columns)
        if prompt is None or chosen is None or rejected is None:
            continue
        if " ".join(chosen.split()) == " ".join(rejected.split()):
            out.error(number, columns[2], "is the same as the chosen answer: a preference pair needs two different "
                      "answers - write a worse one or drop the row")
            continue
        out.add({"prompt": prompt, "chosen": chosen, "rejected": rejected}, number)


LABEL_WORDS = {True: ("true", "1", "yes", "up", "good", "desirable", "like", "👍", "好"),
               False: ("false", "0", "no", "down", "bad", "undesirable", "dislike", "👎", "差")}


def _unpaired(table: Table, mapping: ColumnMapping, out: Conversion) -> None:
    """Prompt / completion / label rows (KTO): the label says whether the completion is a good answer."""
    columns = [mapping.roles[role] for role in ("prompt", "completion", "label")]
    for record, number in zip(table.records, table.row_numbers):
        if all(is_blank(record.get(column)) for column in columns):
            out.warning(number, None, "empty row skipped")
            continue
        prompt, completion = (cell_text(out, record.get(column), number, column) for column in columns[:2])
        raw = record.get(columns[2])
        word = str(raw).strip().lower() if not isinstance(raw, bool) else str(raw).lower()
        word = {"1.0": "1", "0.0": "0"}.get(word, word)
        label = next((value for value, words in LABEL_WORDS.items() if word in words), None)
        if label is None:
            out.error(number, columns[2], f"is {str(raw)[:40]!r}: write true (a good answer) or false (a bad one)")
            continue
        if prompt is not None and completion is not None:
            out.add({"prompt": prompt, "completion": completion, "label": label}, number)


def instruction_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    roles = mapping.roles
    for record, number in zip(table.records, table.row_numbers):
        if "messages" in roles:
            messages = _messages(record.get(roles["messages"]), number, roles["messages"], out)
        else:
            messages = _prompt_response(record, roles, number, out)
        if messages is not None:
            out.add({"messages": messages}, number)


def _prompt_response(record: dict, roles: dict, number: int, out: Conversion) -> list[dict] | None:
    prompt = cell_text(out, record.get(roles["prompt"]), number, roles["prompt"])
    response = cell_text(out, record.get(roles["response"]), number, roles["response"])
    if prompt is None or response is None:
        return None
    extra = record.get(roles["input"]) if "input" in roles else None
    if not is_blank(extra) and not isinstance(extra, (list, dict)):
        prompt = f"{prompt}\n\n{str(extra).strip()}"
    system = record.get(roles["system"]) if "system" in roles else None
    messages = [{"role": "system", "content": str(system).strip()}] if isinstance(system, str) and system.strip() else []
    return messages + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def _messages(value: Any, number: int, column: str, out: Conversion) -> list[dict] | None:
    messages, error, warnings = to_messages(value)
    if error:
        out.error(number, column, error)
    for warning in warnings:
        out.warning(number, column, warning)
    return messages


def unsupervised_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    column = mapping.roles["text"]
    for record, number in zip(table.records, table.row_numbers):
        value = record.get(column)
        if is_blank(value):
            out.warning(number, column, "empty text skipped")
            continue
        text = cell_text(out, value, number, column)
        if text is not None:
            out.add({"text": text}, number)

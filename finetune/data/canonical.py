"""Convert raw records to the canonical rows a trainer consumes, reporting every row that cannot be used.

Canonical rows per task:
  classification  {"text": str, "label": str}          (numeric labels stay strings: 1, 1.0 -> "1")
  semi_supervised {"text", "label"}; rows without a label go to ``unlabelled`` as {"text"}
  ner             {"tokens": [str], "tags": [str]}      (IOB2; BMES/BIOES/IOB1 converted)
  translation     {"source": str, "target": str}
  faq             {"question": str, "answer": str}      (a context/input column is appended to the question)
  instruction     {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
  unsupervised    {"text": str}
  preference      {"prompt": str, "chosen": str, "rejected": str}   (chosen == rejected is an error), or unpaired
                  {"prompt": str, "completion": str, "label": bool} (KTO; label true/false, 1/0, up/down, good/bad)
Run ``pytest tests/test_data_validation.py -q``.

One file over ~300 lines on purpose: one short converter per task, all reporting through the same
``Conversion`` and cell helpers (``_text``, ``_blank``...); the NER tag-scheme conversion is the largest.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from finetune.data.columns import ColumnMapping
from finetune.data.messages import to_messages
from finetune.data.readers import Table
from finetune.data.tags import entity_type, scheme_of, tag_hint, to_iob2
from finetune.data.validation import Problem

@dataclass
class Conversion:
    rows: list[dict] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    unlabelled: list[dict] = field(default_factory=list)
    unlabelled_numbers: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unit: str = "row"

    def error(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(row, column, message, "error", self.unit))

    def warning(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(row, column, message, "warning", self.unit))

    def add(self, row: dict, number: int) -> None:
        self.rows.append(row)
        self.numbers.append(number)


def convert(table: Table, mapping: ColumnMapping, entity_types: set[str] | None = None) -> Conversion:
    out = Conversion(unit=table.unit)
    out.problems.extend(table.problems)
    _CONVERTERS[mapping.task](table, mapping, out, entity_types)
    return out


def row_text(task: str, row: dict) -> str:
    """The text of a canonical row, for length statistics."""
    if task == "ner":
        return " ".join(row["tokens"])
    if task == "translation":
        return row["source"] + "\n" + row["target"]
    if task == "faq":
        return row["question"] + "\n" + row["answer"]
    if task == "instruction":
        return "\n".join(m["content"] for m in row["messages"])
    if task == "preference":
        if "completion" in row:
            return row["prompt"] + "\n" + row["completion"]
        return row["prompt"] + "\n" + max(row["chosen"], row["rejected"], key=len)
    return row["text"]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _text(out: Conversion, value: Any, number: int, column: str) -> str | None:
    """The value as text, or None (after reporting why) when it is missing, empty or not text."""
    if isinstance(value, (list, dict)):
        out.error(number, column, f"is {'a list' if isinstance(value, list) else 'an object'}, expected text")
        return None
    if _blank(value):
        out.error(number, column, "is empty" if value is not None else "is missing")
        return None
    if isinstance(value, bytes):
        out.error(number, column, "holds binary data, expected text")
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text if _unicode_ok(out, text, number, column) else None


def _unicode_ok(out: Conversion, text: str, number: int, column: str) -> bool:
    """JSON may escape half of a surrogate pair ("\\ud800"): not a character, tokenizers fail on it."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError as exc:
        out.error(number, column, f"contains an invalid character (unpaired surrogate {text[exc.start]!r} at "
                  f"position {exc.start}); remove the \\u{ord(text[exc.start]):04x} escape")
        return False


# ---- classification ------------------------------------------------------------------------------

def _label_strings(values: list[Any], numbers: list[int], column: str, out: Conversion) -> list[str | None]:
    """Labels as strings; None where empty. A column of numbers must hold whole numbers (1.0 -> "1")."""
    as_numbers = [None if _blank(v) else _number(v) for v in values]
    present = [i for i, v in enumerate(values) if not _blank(v)]
    if not present or any(as_numbers[i] is None for i in present):
        return [None if _blank(v) else _label_text(v) for v in values]
    labels: list[str | None] = [None] * len(values)
    bad = []
    for i in present:
        x = as_numbers[i]
        if math.isfinite(x) and x.is_integer():
            labels[i] = str(int(x))
        else:
            labels[i] = ""  # reported once below; the row is dropped
            bad.append(i)
    if bad:
        out.error(numbers[bad[0]], column, f"label column '{column}' holds numbers that are not whole ({len(bad)} "
                  f"rows, first {values[bad[0]]!r}): classification needs class labels - round or bucket them")
    return labels


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        return None
    if isinstance(value, (int, float)):
        return float(value) if not isinstance(value, int) or abs(value) < 10**300 else None
    try:
        return float(str(value).strip())
    except (TypeError, ValueError, OverflowError):
        return None


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def _classification(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    text_col, label_col = mapping.roles["text"], mapping.roles["label"]
    semi = mapping.task == "semi_supervised"
    raw_labels = [r.get(label_col) for r in table.records]
    labels = _label_strings(raw_labels, table.row_numbers, label_col, out)
    for record, number, raw_label, label in zip(table.records, table.row_numbers, raw_labels, labels):
        if _blank(record.get(text_col)) and label is None:
            out.warning(number, None, "empty row skipped")
            continue
        if isinstance(raw_label, (list, dict)):
            out.error(number, label_col, "is a list or object; give one label per row (multi-label is not supported)")
            continue
        text = _text(out, record.get(text_col), number, text_col)
        if label == "" or text is None:
            continue  # reported above
        if label is None:
            if semi:
                out.unlabelled.append({"text": text})
                out.unlabelled_numbers.append(number)
            else:
                out.error(number, label_col, "label is empty: fill it in, or choose the semi_supervised task to use "
                          "rows without labels")
            continue
        if not _unicode_ok(out, label, number, label_col):
            continue
        if mapping.label_names:
            if label not in mapping.label_names:
                out.error(number, label_col, f"label '{label}' is not one of the label names given "
                          f"({', '.join(mapping.label_names)})")
                continue
            label = mapping.label_names[label]
        out.add({"text": text, "label": label}, number)


# ---- ner -----------------------------------------------------------------------------------------

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


def _ner(table: Table, mapping: ColumnMapping, out: Conversion, entity_types: set[str] | None) -> None:
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
        if not _unicode_ok(out, " ".join(tokens + tags), number, tok_col):
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


# ---- text pairs, instructions, plain text --------------------------------------------------------

def _text_pairs(table: Table, out: Conversion, first_col: str, second_col: str):
    """(record, row number, first text, second text) of every row that has both; an empty row is skipped with
    a warning, a row with one bad text is reported by ``_text``."""
    for record, number in zip(table.records, table.row_numbers):
        if _blank(record.get(first_col)) and _blank(record.get(second_col)):
            out.warning(number, None, "empty row skipped")
            continue
        first = _text(out, record.get(first_col), number, first_col)
        second = _text(out, record.get(second_col), number, second_col)
        if first is not None and second is not None:
            yield record, number, first, second


def _translation(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    src_col, tgt_col = mapping.roles["source"], mapping.roles["target"]
    for _record, number, source, target in _text_pairs(table, out, src_col, tgt_col):
        if source == target:
            out.warning(number, tgt_col, "target is identical to the source (not translated?)")
        out.add({"source": source, "target": target}, number)


def _faq(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    q_col, a_col, c_col = mapping.roles["question"], mapping.roles["answer"], mapping.roles.get("context")
    for record, number, question, answer in _text_pairs(table, out, q_col, a_col):
        context = record.get(c_col) if c_col else None
        if not _blank(context) and not isinstance(context, (list, dict)):
            question = f"{question}\n\n{str(context).strip()}"
        out.add({"question": question, "answer": answer}, number)


def _preference(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    if "completion" in mapping.roles:
        return _unpaired(table, mapping, out)
    columns = [mapping.roles[role] for role in ("prompt", "chosen", "rejected")]
    for record, number in zip(table.records, table.row_numbers):
        if all(_blank(record.get(column)) for column in columns):
            out.warning(number, None, "empty row skipped")
            continue
        prompt, chosen, rejected = (_text(out, record.get(column), number, column) for column in columns)
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
        if all(_blank(record.get(column)) for column in columns):
            out.warning(number, None, "empty row skipped")
            continue
        prompt, completion = (_text(out, record.get(column), number, column) for column in columns[:2])
        raw = record.get(columns[2])
        word = str(raw).strip().lower() if not isinstance(raw, bool) else str(raw).lower()
        word = {"1.0": "1", "0.0": "0"}.get(word, word)
        label = next((value for value, words in LABEL_WORDS.items() if word in words), None)
        if label is None:
            out.error(number, columns[2], f"is {str(raw)[:40]!r}: write true (a good answer) or false (a bad one)")
            continue
        if prompt is not None and completion is not None:
            out.add({"prompt": prompt, "completion": completion, "label": label}, number)


def _instruction(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    roles = mapping.roles
    for record, number in zip(table.records, table.row_numbers):
        if "messages" in roles:
            messages = _messages(record.get(roles["messages"]), number, roles["messages"], out)
        else:
            messages = _prompt_response(record, roles, number, out)
        if messages is not None:
            out.add({"messages": messages}, number)


def _prompt_response(record: dict, roles: dict, number: int, out: Conversion) -> list[dict] | None:
    prompt = _text(out, record.get(roles["prompt"]), number, roles["prompt"])
    response = _text(out, record.get(roles["response"]), number, roles["response"])
    if prompt is None or response is None:
        return None
    extra = record.get(roles["input"]) if "input" in roles else None
    if not _blank(extra) and not isinstance(extra, (list, dict)):
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


def _unsupervised(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    column = mapping.roles["text"]
    for record, number in zip(table.records, table.row_numbers):
        value = record.get(column)
        if _blank(value):
            out.warning(number, column, "empty text skipped")
            continue
        text = _text(out, value, number, column)
        if text is not None:
            out.add({"text": text}, number)


_CONVERTERS: dict[str, Callable] = {"classification": _classification, "semi_supervised": _classification,
                                    "ner": _ner, "translation": _translation, "faq": _faq,
                                    "instruction": _instruction, "unsupervised": _unsupervised,
                                    "preference": _preference}

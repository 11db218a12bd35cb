"""JSON Lines, JSON (a list of objects, or ``{"data": [...]}``) and Parquet: records that are objects. Row numbers
are the file line for JSON Lines and the 1-based record index for JSON and Parquet. A column holds one kind of
value (a mixed column is refused); dict-valued columns are flattened one level (``translation.en``).

Used by ``finetune.data.readers``; run ``pytest tests/test_data_readers.py -q -k "json or parquet"``.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.core.errors import InputError
from finetune.data.sniff import split_lines
from finetune.data.table import Limits, Table, count_row, too_many_rows


def _parse_json(name: str, text: str, line_offset: int = 0) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: JSON does not parse at line {exc.lineno + line_offset}, column {exc.colno}: "
                         f"{exc.msg}. Fix that line (a missing comma, quote or bracket?).") from None
    except RecursionError:
        raise InputError(f"{name}: JSON is nested too deeply (line {line_offset + 1}). Use flat objects.") from None
    except ValueError as exc:  # e.g. integers with thousands of digits
        raise InputError(f"{name}: JSON value cannot be read near line {line_offset + 1}: {exc}.") from None


def read_jsonl(name: str, text: str, limits: Limits) -> Table:
    records, numbers = [], []
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        value = _parse_json(name, line, number - 1)
        if not isinstance(value, dict):
            raise InputError(f"{name}: line {number} is {_kind_name(value)}, not an object. Every line of a JSON "
                             'Lines file must be one object like {"text": "...", "label": "..."}.')
        records.append(value)
        numbers.append(number)
        count_row(name, numbers, limits)
    return _record_table(name, "jsonl", records, numbers, "line", limits)


def read_json(name: str, text: str, limits: Limits) -> Table:
    value = _parse_json(name, text)
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if isinstance(value.get("data"), list):
            value = value["data"]
        elif len(lists) == 1:
            value = value[lists[0]]
    if isinstance(value, list) and len(value) > limits.max_rows:
        too_many_rows(name, limits)
    if not isinstance(value, list):
        raise InputError(f'{name}: expected a list of objects ([{{...}}, ...]) or {{"data": [...]}}, found '
                         f"{_kind_name(value)}.")
    for index, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise InputError(f"{name}: row {index} is {_kind_name(item)}, not an object. Mixed types: every row "
                             'must be an object like {"text": "...", "label": "..."}.')
    return _record_table(name, "json", value, list(range(1, len(value) + 1)), "row", limits)


def read_parquet(name: str, raw: bytes, limits: Limits) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(raw))
        if parquet.metadata.num_rows > limits.max_rows:  # from the footer: a dictionary-encoded bomb is not expanded
            too_many_rows(name, limits)
        columns = parquet.schema_arrow.names
        if len(columns) > limits.max_columns:
            raise InputError(f"{name} has {len(columns)} columns; the limit is {limits.max_columns}. Keep only the "
                             "columns the task needs and upload it again.")
        records = parquet.read().to_pylist()
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises many types on damaged files; all mean "cannot read it"
        raise InputError(f"{name} cannot be read as Parquet ({type(exc).__name__}: {exc}). Re-export it, or save "
                         "it as CSV or JSON Lines.") from None
    return _record_table(name, "parquet", records, list(range(1, len(records) + 1)), "row", limits)


def _kind_name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _structure(value: Any) -> str | None:
    if value is None:
        return None
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else "scalar"


def _record_table(name: str, fmt: str, records: list[dict], numbers: list[int], unit: str, limits: Limits) -> Table:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
        if len(columns) > limits.max_columns:
            break
    _check_column_count(name, len(columns), limits)
    first: dict[str, tuple[str, int]] = {}
    for record, number in zip(records, numbers):
        for column, value in record.items():
            kind = _structure(value)
            if kind is None:
                continue
            seen = first.setdefault(column, (kind, number))
            if seen[0] != kind:
                raise InputError(f"{name}: mixed types in column '{column}': {unit} {seen[1]} has a {seen[0]}, "
                                 f"{unit} {number} has a {kind}. Make every value of a column the same type.")
    nested = [c for c in columns if first.get(c, ("",))[0] == "object"]
    if nested:
        records = [_flatten(r, nested) for r in records]
        columns = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        _check_column_count(name, len(columns), limits)
    return Table(name, fmt, [str(c) for c in columns], records, numbers, unit, "")


def _check_column_count(name: str, count: int, limits: Limits) -> None:
    if count > limits.max_columns:
        raise InputError(f"{name} has more than {limits.max_columns} columns (fields); the limit is "
                         f"{limits.max_columns}. Keep only the fields the task needs and upload it again.")


def _flatten(record: dict, nested: list[str]) -> dict:
    flat = {}
    for key, value in record.items():
        if key in nested and isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        elif key not in nested:
            flat[key] = value
    return flat

"""Read an uploaded dataset file into a ``Table`` of raw records, refusing files nobody can use.

Formats: CSV (RFC 4180 quoting, strict; the first row is the header; ``;`` or tab between columns is used
when the header has no comma), TSV (``csv.QUOTE_NONE``: quotes are text; the first row is the header), JSON Lines, JSON (a list of objects, or ``{"data": [...]}``), Parquet, CoNLL
(``token [...] tag`` per line, tab or space separated, blank line between sentences, ``-DOCSTART-``
skipped; BMES/BIOES tags are converted to IOB2 later, in ``canonical``) and plain text.

Plain text: if the file has blank lines, each blank-line separated paragraph is one example (its lines
joined with ``\\n``, so hard-wrapped prose stays together); if it has none, each line is one example.

The format comes from the extension; the content is sniffed when the extension is missing, unknown or
contradicted by the content (e.g. a ``.csv`` holding JSON Lines). Row numbers (``Table.row_numbers``):
the file line where the record starts for CSV, TSV, JSONL, CoNLL and text (the header is line 1, as in
a spreadsheet), the 1-based record index for JSON and Parquet. Dict-valued columns are flattened one
level (``translation.en``). Run ``pytest tests/test_data_readers.py -q``.

One file over ~300 lines on purpose: the readers share the limits, the row numbering and the refusal
messages, and each is short; split per format, every module would import the same private helpers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError
from finetune.data.sniff import FORMATS, choose_format, conll_fields, decode_text, split_lines
from finetune.data.validation import Problem

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
              ".parquet": "parquet", ".pq": "parquet", ".conll": "conll", ".conllu": "conll", ".bio": "conll",
              ".iob": "conll", ".iob2": "conll", ".bmes": "conll", ".bioes": "conll", ".ner": "conll",
              ".txt": "text", ".text": "text", ".md": "text"}


@dataclass
class Limits:
    """Hard limits on an upload (checked before parsing) and the minimum data needed to train."""

    max_bytes: int = 200 * 1024 * 1024
    max_columns: int = 100
    min_rows: int = 10
    preview_rows: int = 20
    max_rows: int = 500_000
    """Examples read at most; a file with more is refused while it is read, before it is all held."""

    def __post_init__(self):
        for name in ("max_bytes", "max_columns", "min_rows", "max_rows"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"Limits.{name} must be a whole number of at least 1; got {getattr(self, name)!r}.")
        if not isinstance(self.preview_rows, int) or self.preview_rows < 0:
            raise InputError(f"Limits.preview_rows must be 0 or more; got {self.preview_rows!r}.")


@dataclass
class Table:
    """Raw records as read, before any column mapping."""

    name: str
    format: str
    columns: list[str]
    records: list[dict[str, Any]]
    row_numbers: list[int]
    unit: str  # "line" or "row": how row_numbers count
    sha256: str  # of the file bytes
    problems: list[Problem] = field(default_factory=list)  # rows the reader could not use
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)


def read_table(path: str | Path, limits: Limits | None = None) -> Table:
    limits = limits or Limits()
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputError(f"{name}: file not found at {path}. Upload the file again.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{name} is empty (0 bytes). Upload a file with a header and at least one row.")
    if size > limits.max_bytes:
        raise InputError(f"{name} is {human_bytes(size)}, larger than the limit of {human_bytes(limits.max_bytes)}. "
                         "Split it or keep a sample, or raise Limits.max_bytes.")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    ext_format = EXTENSIONS.get(path.suffix.lower())
    notes: list[str] = []
    if raw.startswith(b"PAR1"):
        table = _read_parquet(name, raw, limits)
    else:
        text = decode_text(name, raw)
        del raw  # the decoded text is all that is kept
        if text.count("\n") > 50 * limits.max_rows:  # far more lines than any file of max_rows examples has
            _too_many_rows(name, limits)
        fmt = choose_format(name, ext_format, path.suffix, text, notes)
        table = _READERS[fmt](name, text, limits)
    table.notes = notes + table.notes
    table.sha256 = digest
    if not table.records and not table.skipped_rows:
        raise InputError(f"{name} contains no examples ({FORMATS[table.format]}). Add rows below the header.")
    return table


def _too_many_rows(name: str, limits: Limits) -> None:
    raise InputError(f"{name} has more than {limits.max_rows:,} examples; the limit is {limits.max_rows:,}. Keep a "
                     "sample, or split it into several runs.")


def _counted(name: str, numbers: list, limits: Limits) -> None:
    """Refuse the file as soon as one example more than the limit has been read."""
    if len(numbers) > limits.max_rows:
        _too_many_rows(name, limits)


# ---- readers -----------------------------------------------------------------------------------

def _read_delimited(name: str, text: str, limits: Limits, delimiter: str) -> Table:
    csv.field_size_limit(min(limits.max_bytes, 2**31 - 1))
    fmt = "tsv" if delimiter == "\t" else "csv"
    notes = []
    if fmt == "csv":
        header_line = next((ln for ln in split_lines(text[:65536]) if ln.strip()), "")
        if "," not in header_line and (";" in header_line or "\t" in header_line):
            delimiter = max(";\t", key=header_line.count)  # Excel in many locales writes ';'
            notes.append(f"{name}: the header has no comma; read with {delimiter!r} between columns")
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=fmt == "csv")
    header: list[str] | None = None
    records, numbers, problems = [], [], []
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = _header(name, cells, start, limits)
                continue
            extra = cells[len(header):]
            if any(c.strip() for c in extra):
                hint = "a tab inside a text" if fmt == "tsv" else "a comma inside a text that is not in double quotes"
                problems.append(Problem(start, None, f"{len(cells)} fields but the header has {len(header)} "
                                        f"(is there {hint}?)", "error", "line"))
                continue
            records.append({h: (cells[i] if i < len(cells) else None) for i, h in enumerate(header)})
            numbers.append(start)
            _counted(name, numbers, limits)
    except csv.Error as exc:
        raise InputError(f"{name}: {FORMATS[fmt]} cannot be read at line {reader.line_num}: {exc}. Check the quotes "
                         "on that line (a text containing a double quote must be quoted, with the quote doubled).") from None
    return Table(name, fmt, header or [], records, numbers, "line", "", problems, len(problems), notes)


def _header(name: str, cells: list[str], line: int, limits: Limits) -> list[str]:
    if len(cells) > limits.max_columns:
        raise InputError(f"{name} has {len(cells)} columns (line {line}); the limit is {limits.max_columns}. Keep "
                         "only the columns the task needs (e.g. text and label) and upload it again.")
    header = [c.strip() or f"column_{i + 1}" for i, c in enumerate(cells)]
    seen: dict[str, int] = {}
    for i, column in enumerate(header, 1):
        if column in seen:
            raise InputError(f"{name}: column '{column}' appears twice in the header (line {line}, columns "
                             f"{seen[column]} and {i}). Rename one of them.")
        seen[column] = i
    return header


def _read_csv(name: str, text: str, limits: Limits) -> Table:
    return _read_delimited(name, text, limits, ",")


def _read_tsv(name: str, text: str, limits: Limits) -> Table:
    return _read_delimited(name, text, limits, "\t")


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


def _read_jsonl(name: str, text: str, limits: Limits) -> Table:
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
        _counted(name, numbers, limits)
    return _record_table(name, "jsonl", records, numbers, "line", limits)


def _read_json(name: str, text: str, limits: Limits) -> Table:
    value = _parse_json(name, text)
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if isinstance(value.get("data"), list):
            value = value["data"]
        elif len(lists) == 1:
            value = value[lists[0]]
    if isinstance(value, list) and len(value) > limits.max_rows:
        _too_many_rows(name, limits)
    if not isinstance(value, list):
        raise InputError(f'{name}: expected a list of objects ([{{...}}, ...]) or {{"data": [...]}}, found '
                         f"{_kind_name(value)}.")
    for index, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise InputError(f"{name}: row {index} is {_kind_name(item)}, not an object. Mixed types: every row "
                             'must be an object like {"text": "...", "label": "..."}.')
    return _record_table(name, "json", value, list(range(1, len(value) + 1)), "row", limits)


def _read_parquet(name: str, raw: bytes, limits: Limits) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(raw))
        if parquet.metadata.num_rows > limits.max_rows:  # from the footer: a dictionary-encoded bomb is not expanded
            _too_many_rows(name, limits)
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


def _read_conll(name: str, text: str, limits: Limits) -> Table:
    """One record per sentence; its row number is the line of its first token (token i is on line start+i)."""
    records, numbers = [], []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip(" \t") or line.startswith("-DOCSTART-"):
            if tokens:
                records.append({"tokens": tokens, "tags": tags})
                numbers.append(start)
                _counted(name, numbers, limits)
                tokens, tags = [], []
            continue
        parts = conll_fields(line)
        if not tokens:
            start = number
        tokens.append(parts[0])
        tags.append(parts[-1] if len(parts) > 1 else "")
    if tokens:
        records.append({"tokens": tokens, "tags": tags})
        numbers.append(start)
    return Table(name, "conll", ["tokens", "tags"], records, numbers, "line", "")


def _read_text(name: str, text: str, limits: Limits) -> Table:
    lines = [ln.rstrip() for ln in split_lines(text)]
    by_paragraph = _has_inner_blank(lines)
    records, numbers = [], []
    block: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if block:
                records.append({"text": "\n".join(block)})
                numbers.append(start)
                _counted(name, numbers, limits)
                block = []
            continue
        if not block:
            start = number
        block.append(line)
        if not by_paragraph:
            records.append({"text": line})
            numbers.append(number)
            _counted(name, numbers, limits)
            block = []
    if block:
        records.append({"text": "\n".join(block)})
        numbers.append(start)
    note = "paragraphs separated by blank lines are the examples" if by_paragraph else "each line is one example"
    return Table(name, "text", ["text"], records, numbers, "line", "", notes=[f"plain text: {note}"])


def _has_inner_blank(lines: list[str]) -> bool:
    """A blank line between two non-blank lines (trailing blank lines at the end do not count)."""
    content = [i for i, ln in enumerate(lines) if ln.strip()]
    return bool(content) and any(not lines[i].strip() for i in range(content[0], content[-1]))


_READERS = {"csv": _read_csv, "tsv": _read_tsv, "jsonl": _read_jsonl, "json": _read_json, "conll": _read_conll,
            "text": _read_text}

"""CSV and TSV: CSV with RFC 4180 quoting, strict (``;`` or tab between columns when the header has no comma, as
Excel writes in many locales), TSV with ``csv.QUOTE_NONE`` (quotes are text). The first row is the header;
row numbers are the file line where a record starts (the header is line 1, as in a spreadsheet).

Used by ``finetune.data.readers``; run ``pytest tests/test_data_readers.py -q -k "csv or tsv"``.
"""

from __future__ import annotations

import csv
import io

from assistant.core.errors import InputError
from finetune.data.sniff import FORMATS, split_lines
from finetune.data.table import Limits, Table, count_row
from finetune.data.validation import Problem


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
            count_row(name, numbers, limits)
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


def read_csv(name: str, text: str, limits: Limits) -> Table:
    return _read_delimited(name, text, limits, ",")


def read_tsv(name: str, text: str, limits: Limits) -> Table:
    return _read_delimited(name, text, limits, "\t")

"""Read an uploaded dataset file into a ``Table`` of raw records, refusing files nobody can use.

Formats, one module each: ``delimited`` (CSV, TSV), ``json_records`` (JSON Lines, JSON, Parquet) and
``line_formats`` (CoNLL, plain text); ``sniff`` refuses non-text bytes and guesses a format from the content.
The format comes from the extension; the content is sniffed when the extension is missing, unknown or
contradicted by the content (e.g. a ``.csv`` holding JSON Lines). Row numbers (``Table.row_numbers``):
the file line where the record starts for CSV, TSV, JSONL, CoNLL and text (the header is line 1, as in
a spreadsheet), the 1-based record index for JSON and Parquet. Run ``pytest tests/test_data_readers.py -q``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError
from finetune.data.delimited import read_csv, read_tsv
from finetune.data.json_records import read_json, read_jsonl, read_parquet
from finetune.data.line_formats import read_conll, read_text
from finetune.data.sniff import FORMATS, choose_format, decode_text
from finetune.data.table import Limits, Table, too_many_rows

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
              ".parquet": "parquet", ".pq": "parquet", ".conll": "conll", ".conllu": "conll", ".bio": "conll",
              ".iob": "conll", ".iob2": "conll", ".bmes": "conll", ".bioes": "conll", ".ner": "conll",
              ".txt": "text", ".text": "text", ".md": "text"}
_READERS = {"csv": read_csv, "tsv": read_tsv, "jsonl": read_jsonl, "json": read_json, "conll": read_conll,
            "text": read_text}


def read_table(path: str | Path, limits: Limits | None = None) -> Table:
    """The file's raw records; InputError for a file nobody can use (too big, not text, no examples...)."""
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
        table = read_parquet(name, raw, limits)
    else:
        text = decode_text(name, raw)
        del raw  # the decoded text is all that is kept
        if text.count("\n") > 50 * limits.max_rows:  # far more lines than any file of max_rows examples has
            too_many_rows(name, limits)
        fmt = choose_format(name, ext_format, path.suffix, text, notes)
        table = _READERS[fmt](name, text, limits)
    table.notes = notes + table.notes
    table.sha256 = digest
    if not table.records and not table.skipped_rows:
        raise InputError(f"{name} contains no examples ({FORMATS[table.format]}). Add rows below the header.")
    return table

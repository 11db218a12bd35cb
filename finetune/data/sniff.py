"""Is the upload text at all, and which format is it? Byte-level refusals and content sniffing.

``decode_text`` refuses empty, binary (NUL bytes, ZIP/Excel, gzip, PDF), UTF-16 and non-UTF-8 files with
the byte offset of the first bad byte (a UTF-8 BOM is accepted). ``sniff_format`` guesses a format from
the content; ``choose_format`` decides between the extension and the content.
Run ``pytest tests/test_data_readers.py -q -k "sniff or refuse"``.
"""

from __future__ import annotations

import csv
import json
import re

from assistant.core.errors import InputError

FORMATS = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON Lines", "json": "JSON", "parquet": "Parquet",
           "conll": "CoNLL", "text": "plain text"}
TAG_RE = re.compile(r"^(O|[BIESMLU]-\S+)$")
SUPPORTED = "CSV, TSV, JSON, JSON Lines, Parquet, CoNLL or plain text"
_MAGIC = {b"PK\x03\x04": "a ZIP archive (an Excel .xlsx or Word file?): export it as CSV UTF-8",
          b"\x1f\x8b": "gzip-compressed: decompress it first", b"%PDF": "a PDF: export the data as CSV or JSON Lines"}


def decode_text(name: str, raw: bytes) -> str:
    """UTF-8 text (a BOM is dropped) or an InputError saying where the file stops being text."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{name} is UTF-16 encoded. Save it as UTF-8 and upload it again.")
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise InputError(f"{name} is {what}. Supported: {SUPPORTED}.")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{name} looks like a binary file (NUL byte at byte offset {nul}). Upload {SUPPORTED} "
                         "saved as UTF-8 text.")
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + bom
        line = raw[:offset].count(b"\n") + 1
        raise InputError(f"{name} is not UTF-8: byte 0x{raw[offset]:02X} at byte offset {offset} (line {line}) "
                         "is not valid UTF-8. Save it as UTF-8 (Excel: 'CSV UTF-8'; editors: Save as > "
                         "Encoding UTF-8) and upload it again.") from None
    if not text.strip():
        raise InputError(f"{name} is empty (only whitespace). Upload a file with at least one example.")
    return text


def sniff_format(text: str) -> str:
    """Guess a text format from the content alone."""
    lines = [ln for ln in split_lines(text[:65536])[:200] if ln.strip()]
    first = lines[0].strip() if lines else ""
    if first.startswith("["):
        return "json"
    if first.startswith("{"):
        if len(lines) > 1 and _is_json_object(first):
            return "jsonl"
        return "json"
    if _looks_like_conll(lines):
        return "conll"
    if len(lines) >= 2 and _consistent_fields(lines[:50], "\t"):
        return "tsv"
    if len(lines) >= 2 and _consistent_fields(lines[:50], ","):
        return "csv"
    return "text"


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _looks_like_conll(lines: list[str]) -> bool:
    lines = [ln for ln in lines if not ln.startswith("-DOCSTART-")]
    if len(lines) < 2:
        return False
    tagged = sum(1 for ln in lines if 2 <= len(parts := conll_fields(ln)) <= 12 and TAG_RE.match(parts[-1]))
    return tagged >= 0.9 * len(lines)


def _consistent_fields(lines: list[str], delimiter: str) -> bool:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        counts = {len(r) for r in csv.reader(lines, delimiter=delimiter, quoting=quoting) if r}
    except csv.Error:
        return False
    header = lines[0].split(delimiter)
    return len(counts) == 1 and counts.pop() >= 2 and all(0 < len(h.strip()) <= 64 for h in header)


def choose_format(name: str, ext_format: str | None, suffix: str, text: str, notes: list[str]) -> str:
    sniffed = sniff_format(text)
    if ext_format is None or ext_format == "parquet":
        why = "is not Parquet" if ext_format == "parquet" else f"has no known extension ('{suffix}')"
        notes.append(f"{name} {why}; its content looks like {FORMATS[sniffed]}, read as that")
        return sniffed
    chosen = ext_format
    if ext_format == "text" and sniffed in ("conll", "tsv", "json", "jsonl"):
        chosen = sniffed
    elif ext_format in ("csv", "tsv", "conll", "json") and sniffed in ("json", "jsonl"):
        chosen = sniffed
    elif ext_format == "jsonl" and sniffed == "json" and text.lstrip().startswith("["):
        chosen = sniffed  # a one-line object stays JSON Lines: one record
    elif {ext_format, sniffed} == {"csv", "tsv"} or (ext_format == "tsv" and sniffed == "conll"):
        chosen = sniffed
    if chosen != ext_format:
        notes.append(f"{name} is named {suffix} but its content looks like {FORMATS[chosen]}; read as {FORMATS[chosen]}")
    return chosen


def split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def conll_fields(line: str) -> list[str]:
    line = line.strip(" \t")
    separator = "\t" if "\t" in line else " "
    return [part.strip(" ") for part in line.split(separator) if part.strip(" ")]

"""Fuzz ``load_dataset_file`` with random bytes and malformed CSV / JSONL / CoNLL text: it must either
return a dataset whose report can be rendered, or raise InputError - never another exception.

Run: pytest tests/test_data_fuzz.py -q   (FUZZ_EXAMPLES=2000 for a deeper run)
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.core.errors import InputError
from finetune.data import DATA_TASKS, Limits, load_dataset_file

EXTENSIONS = ["", ".csv", ".tsv", ".jsonl", ".json", ".conll", ".bmes", ".txt", ".parquet", ".dat"]
# FUZZ_EXAMPLES=2000 for a deeper run; no example database is written (nothing lands in the repo)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TRICKY = list('ab Zé中 ,;\t"\'{}[]:\\\n\r-_.0123456789OBIESM\x00\x7f\ufeff')
tasks = st.sampled_from([None, *DATA_TASKS])
limits = st.sampled_from([Limits(), Limits(min_rows=1), Limits(max_columns=2, max_bytes=400)])
cell = st.text(alphabet=st.sampled_from([c for c in TRICKY if c != "\x00"]), max_size=12)
NAMES = ["text", "label", "tokens", "tags", "messages", "conversations", "role", "content", "from", "value", "source",
         "target", "question", "answer", "instruction", "input", "output", "data", "en", "de", "translation"]
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.sampled_from(
        ["O", "B-PER", "I-LOC", "user", "assistant", "gpt", "human", "1.0", "0.5", "[\"a\"]", "\ud800x"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(NAMES), children, max_size=4),
    max_leaves=12)
record = st.dictionaries(st.sampled_from(NAMES), json_value, max_size=4)
header = st.lists(st.sampled_from(NAMES[:4] + NAMES[10:] + ["x"]), min_size=1, max_size=4, unique=True)


def check(content: bytes, extension: str, task: str | None, limit: Limits) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{extension}"
        path.write_bytes(content)
        try:
            loaded = load_dataset_file(path, task=task, limits=limit)
        except InputError as exc:
            assert str(exc)
            return
    report = loaded.report
    assert report.total_rows >= report.valid_rows + report.unlabelled_rows
    assert report.valid_rows == len(loaded.rows) and len(loaded.row_numbers) == len(loaded.rows)
    report.summary()
    report.to_markdown()
    json.dumps([loaded.rows, loaded.unlabelled], ensure_ascii=False).encode("utf-8")  # valid Unicode only
    json.dumps(loaded.preview, allow_nan=True)
    if not report.ok:
        try:
            loaded.raise_if_invalid()
        except InputError:
            pass


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(EXTENSIONS), tasks, limits)
def test_random_bytes(content, extension, task, limit):
    check(content, extension, task, limit)


@FUZZ
@given(st.text(alphabet=st.sampled_from(TRICKY), max_size=300), st.sampled_from(EXTENSIONS), tasks, limits)
def test_random_text(text, extension, task, limit):
    check(text.encode("utf-8", "surrogatepass"), extension, task, limit)


@FUZZ
@given(header, st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=15),
       st.sampled_from([",", "\t", ";"]), st.sampled_from([".csv", ".tsv", ""]), tasks, limits, st.integers(0, 400),
       st.sampled_from(['"', "\n", ",", "\t", ""]))
def test_malformed_csv(columns, rows, delimiter, extension, task, limit, cut_at, inserted):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows([columns] + rows)
    text = buffer.getvalue()
    cut_at = min(cut_at, len(text))
    check((text[:cut_at] + inserted + text[cut_at:]).encode(), extension, task, limit)


@FUZZ
@given(st.lists(record | json_value, min_size=1, max_size=12), st.sampled_from([".jsonl", ".json", ""]), tasks, limits,
       st.booleans())
def test_malformed_jsonl(values, extension, task, limit, truncate):
    text = "\n".join(json.dumps(v) for v in values)
    if truncate:
        text = text[: len(text) * 2 // 3]
    check(text.encode(), extension, task, limit)


@FUZZ
@given(st.lists(st.lists(st.tuples(cell, st.sampled_from(["O", "B-PER", "I-PER", "M-LOC", "E-LOC", "S-X", "I-", "B",
                                                           "", "x-y", "0"])), max_size=6), max_size=12),
       st.sampled_from([" ", "\t", "  "]), st.sampled_from([".conll", ".bmes", ".txt", ""]), tasks, limits)
def test_malformed_conll(sentences, separator, extension, task, limit):
    text = "\n".join("".join(f"{tok}{separator}{tag}\n" for tok, tag in sentence) for sentence in sentences)
    check(("-DOCSTART- O\n\n" + text).encode("utf-8", "surrogatepass"), extension, task, limit)


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": [f"review {i}" for i in range(12)], "label": ["good", "bad"] * 6}), buffer)
    return buffer.getvalue()


PARQUET = _parquet_bytes()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(PARQUET) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(4, len(PARQUET)), tasks)
def test_corrupted_parquet(flips, keep, task):
    content = bytearray(PARQUET)
    for offset, byte in flips:
        content[offset] = byte
    check(bytes(content[:keep]), ".parquet", task, Limits(min_rows=1))

"""Readers stop at their limits while reading, before they hold the data (issue: one upload took the
server's memory). Memory is measured with tracemalloc (deterministic), never with a timer."""

import tracemalloc

import pytest

from assistant.core.errors import InputError
from assistant.tasks.classification import read_text_table
from finetune.data.readers import read_table
from finetune.data.table import Limits

MB = 2**20


def peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def thirty_million_rows(path):
    with path.open("w") as handle:
        handle.write("text\n")
        for _ in range(300):
            handle.write("a\n" * 100_000)
    return path


def test_a_60_mb_task_file_is_refused_at_the_row_limit_without_holding_it(tmp_path):
    big = thirty_million_rows(tmp_path / "big.csv")

    def read():
        with pytest.raises(InputError, match="more than 2,000 rows; the limit here is 2,000"):
            read_text_table(big, max_rows=2000)

    assert peak_while(read) < 5 * MB


def test_fine_tune_reader_refuses_too_many_examples(tmp_path):
    big = thirty_million_rows(tmp_path / "big.csv")

    def read():
        with pytest.raises(InputError, match="more than 500,000 examples"):
            read_table(big)

    assert peak_while(read) < 200 * MB  # the decoded text itself, not 30 million records
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join('{"text": "x", "label": "a"}\n' for _ in range(30)))
    with pytest.raises(InputError, match="more than 20 examples"):
        read_table(jsonl, Limits(max_rows=20))


def test_a_dictionary_encoded_parquet_bomb_is_refused_from_its_footer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    bomb = tmp_path / "bomb.parquet"
    column = pa.array(["same text"] * 3_000_000).dictionary_encode()
    pq.write_table(pa.table({"text": column, "label": column}), bomb, compression="zstd")
    assert bomb.stat().st_size < 200_000

    def read():
        with pytest.raises(InputError, match="more than 500,000 examples"):
            read_table(bomb)

    assert peak_while(read) < 20 * MB


def test_an_unclosed_quote_is_an_error_at_its_row_in_both_readers(tmp_path):
    bad = tmp_path / "quote.csv"
    bad.write_text("text,label\n" + "".join(f"row {i},x\n" for i in range(10)) + '"unclosed,x\n'
                   + "".join(f"row {i},x\n" for i in range(20)))
    with pytest.raises(InputError, match="row starting at line 12 cannot be read"):
        read_text_table(bad)
    with pytest.raises(InputError, match="cannot be read at line"):
        read_table(bad)

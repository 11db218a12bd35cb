"""File formats, sniffing, up-front refusals, column detection and the shipped samples.

Over 300 lines on purpose: one table of cases per file format, read side by side.

Run: pytest tests/test_data_readers.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assistant.core.errors import InputError
from finetune.data import ColumnMapping, Limits, detect_columns, guess_task, load_dataset_file, read_table

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples"
LOOSE = Limits(min_rows=1)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def reviews(n: int = 12) -> list[tuple[str, str]]:
    return [(f"review number {i}, with a comma", "pos" if i % 2 else "neg") for i in range(n)]


# ---- shipped samples -----------------------------------------------------------------------------

SAMPLE_TASKS = {
    "sentiment_en.csv": ("csv", "classification", 120), "sentiment_zh.jsonl": ("jsonl", "classification", 80),
    "topics_zh.tsv": ("tsv", "classification", 90), "ner_en.conll": ("conll", "ner", 80),
    "ner_zh.jsonl": ("jsonl", "ner", 60), "translation_en_de.jsonl": ("jsonl", "translation", 120),
    "translation_en_zh.tsv": ("tsv", "translation", 100), "faq_instructions.jsonl": ("jsonl", "instruction", 80),
    "chat_messages.jsonl": ("jsonl", "instruction", 40), "domain_text.txt": ("text", "unsupervised", 120),
    "sentiment_semi_en.csv": ("csv", "semi_supervised", 60), "preference_pairs.jsonl": ("jsonl", "preference", 24),
}


def test_every_sample_is_listed():
    assert {p.name for p in SAMPLES.iterdir()} - {"README.md"} == set(SAMPLE_TASKS)


@pytest.mark.parametrize("name", sorted(SAMPLE_TASKS))
def test_sample_loads_without_errors_and_task_is_guessed(name):
    fmt, task, rows = SAMPLE_TASKS[name]
    loaded = load_dataset_file(SAMPLES / name)
    assert (loaded.format, loaded.task, len(loaded.rows)) == (fmt, task, rows)
    assert loaded.report.errors == [], loaded.report.summary()
    assert loaded.report.ok
    loaded.raise_if_invalid()
    assert 0 < len(loaded.preview) <= 20
    assert len(loaded.fingerprint) == 64


def test_preview_table_renders_in_a_gradio_dataframe():
    import gradio as gr

    loaded = load_dataset_file(SAMPLES / "ner_en.conll")
    table = gr.Dataframe().postprocess(loaded.preview_table())
    assert table.headers == ["tokens", "tags"] and len(table.data) == 20
    assert table.data[0][1].startswith("B-PER I-PER O")


def test_semi_supervised_sample_splits_labelled_and_unlabelled():
    loaded = load_dataset_file(SAMPLES / "sentiment_semi_en.csv")
    assert len(loaded.unlabelled) == 140
    assert loaded.report.label_counts == {"positive": 30, "negative": 30}
    assert set(loaded.unlabelled[0]) == {"text"}


# ---- formats -------------------------------------------------------------------------------------

def test_csv_with_quoted_commas_newlines_and_doubled_quotes(tmp_path):
    body = 'text,label\n"a ""quoted"" word, and a comma",pos\n"two\nlines",neg\nplain,pos\n'
    table = read_table(write(tmp_path, "d.csv", body))
    assert table.format == "csv"
    assert [r["text"] for r in table.records] == ['a "quoted" word, and a comma', "two\nlines", "plain"]
    assert table.row_numbers == [2, 3, 5]  # file lines: the header is line 1; "two\nlines" spans 3-4


def test_csv_with_semicolons_and_crlf(tmp_path):
    table = read_table(write(tmp_path, "d.csv", "text;label\r\ngood, really;pos\r\nbad;neg\r\n"))
    assert table.columns == ["text", "label"]
    assert table.records[0] == {"text": "good, really", "label": "pos"}


def test_tsv_keeps_quotes_as_text(tmp_path):
    table = read_table(write(tmp_path, "d.tsv", 'text\tlabel\nhe said "hi\t1\n"quoted" start\t0\n'))
    assert [r["text"] for r in table.records] == ['he said "hi', '"quoted" start']


def test_utf8_bom_is_accepted(tmp_path):
    table = read_table(write(tmp_path, "d.csv", b"\xef\xbb\xbftext,label\nx,1\n"))
    assert table.columns == ["text", "label"]


def test_jsonl_skips_blank_lines_and_counts_file_lines(tmp_path):
    body = '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n'
    table = read_table(write(tmp_path, "d.jsonl", body))
    assert table.row_numbers == [1, 3] and table.unit == "line"


@pytest.mark.parametrize("wrapper", [lambda rows: rows, lambda rows: {"data": rows, "version": 2}])
def test_json_list_or_data_key(tmp_path, wrapper):
    rows = [{"text": t, "label": lab} for t, lab in reviews()]
    loaded = load_dataset_file(write(tmp_path, "d.json", json.dumps(wrapper(rows))))
    assert loaded.format == "json" and loaded.task == "classification" and len(loaded.rows) == 12


def test_json_nested_translation_objects_are_flattened(tmp_path):
    rows = [{"translation": {"en": f"house {i}", "de": f"Haus {i}"}} for i in range(12)]
    loaded = load_dataset_file(write(tmp_path, "wmt.json", json.dumps(rows)))
    assert loaded.columns == ["translation.en", "translation.de"]
    assert loaded.task == "translation"
    assert loaded.rows[0] == {"source": "house 0", "target": "Haus 0"}


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    texts, labels = zip(*reviews())
    pq.write_table(pa.table({"review": list(texts), "sentiment": list(labels)}), path)
    loaded = load_dataset_file(path)
    assert loaded.format == "parquet" and loaded.report.ok
    assert loaded.mapping.roles == {"text": "review", "label": "sentiment"}
    assert loaded.rows[0] == {"text": "review number 0, with a comma", "label": "neg"}


def test_parquet_lists_for_ner(tmp_path):
    path = tmp_path / "ner.parquet"
    pq.write_table(pa.table({"words": [["Anna", "lives", "in", "Rome"]] * 10,
                             "ner_tags": [["B-PER", "O", "O", "B-LOC"]] * 10}), path)
    loaded = load_dataset_file(path, limits=LOOSE)
    assert loaded.task == "ner"
    assert loaded.rows[0]["tags"] == ["B-PER", "O", "O", "B-LOC"]


def test_conll_tabs_docstart_and_extra_columns(tmp_path):
    body = "-DOCSTART- -X- -X- O\n\nEU\tNNP\tB-NP\tB-ORG\nrejects\tVBZ\tB-VP\tO\n\n\nPeter\tNNP\tB-NP\tB-PER\n"
    table = read_table(write(tmp_path, "d.conll", body))
    assert table.records == [{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
                             {"tokens": ["Peter"], "tags": ["B-PER"]}]
    assert table.row_numbers == [3, 7]


def test_plain_text_lines_or_paragraphs(tmp_path):
    lines = read_table(write(tmp_path, "a.txt", "first example\nsecond example\n\n"))
    assert [r["text"] for r in lines.records] == ["first example", "second example"]
    paragraphs = read_table(write(tmp_path, "b.txt", "wrapped prose\ncontinues here\n\nnew paragraph\n"))
    assert [r["text"] for r in paragraphs.records] == ["wrapped prose\ncontinues here", "new paragraph"]
    assert paragraphs.row_numbers == [1, 4]


# ---- sniffing ------------------------------------------------------------------------------------

JSONL_BODY = '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
CSV_BODY = "text,label\na,x\nb,y\n"
# The format the content shows, whatever the file name says: (name, body) pairs by expected format.
SNIFFED = {
    "jsonl": [("data", JSONL_BODY), ("data.csv", JSONL_BODY), ("data.json", JSONL_BODY)],
    "json": [("data.jsonl", '[{"text": "a", "label": "x"}]')],
    "tsv": [("data.dat", "text\tlabel\na\tx\nb\ty\n"), ("data.csv", "text\tlabel\na, b\tx\nb\ty\n")],
    "csv": [("data.tsv", CSV_BODY), ("data", CSV_BODY), ("fake.parquet", CSV_BODY)],
    "conll": [("train.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\n"), ("data.bmes", "吴 B-NAME\n重 M-NAME\n阳 E-NAME\n")],
    "text": [("notes", "Just some prose, with commas.\nAnd another line, of text, here.\n")],
}


@pytest.mark.parametrize("name, body, expected",
                         [(name, body, fmt) for fmt, cases in SNIFFED.items() for name, body in cases])
def test_format_sniffing(tmp_path, name, body, expected):
    assert read_table(write(tmp_path, name, body)).format == expected


def test_sniffed_format_is_noted(tmp_path):
    table = read_table(write(tmp_path, "data.csv", '{"text": "a"}\n{"text": "b"}\n'))
    assert any("looks like JSON Lines" in note for note in table.notes)


# ---- refusals ------------------------------------------------------------------------------------

def refusal(path: Path, limits: Limits = Limits(), **kwargs) -> str:
    with pytest.raises(InputError) as info:
        load_dataset_file(path, limits=limits, **kwargs)
    return str(info.value)


def test_refuses_empty_file(tmp_path):
    assert "d.csv is empty" in refusal(write(tmp_path, "d.csv", ""))
    assert "d.txt is empty" in refusal(write(tmp_path, "d.txt", "\n  \n"))


def test_refuses_header_without_rows(tmp_path):
    assert "no examples" in refusal(write(tmp_path, "d.csv", "text,label\n"))


def test_refuses_binary_file(tmp_path):
    message = refusal(write(tmp_path, "d.csv", b"text,label\nab\x00cd,1\n"))
    assert "d.csv looks like a binary file" in message and "byte offset 13" in message
    assert "Excel" in refusal(write(tmp_path, "book.csv", b"PK\x03\x04" + bytes(range(256))))


def test_refuses_non_utf8_with_offset_and_line(tmp_path):
    message = refusal(write(tmp_path, "gbk.csv", "text,label\n很好,1\n".encode("gbk")))
    assert "gbk.csv is not UTF-8" in message and "byte offset 11 (line 2)" in message
    assert "Save it as UTF-8" in message


def test_refuses_non_utf8_after_bom_counts_the_bom(tmp_path):
    message = refusal(write(tmp_path, "d.csv", b"\xef\xbb\xbftext\n\xff\n"))
    assert "byte offset 8" in message


def test_refuses_utf16(tmp_path):
    assert "UTF-16" in refusal(write(tmp_path, "d.csv", "text,label\n".encode("utf-16")))


def test_refuses_file_over_the_size_limit(tmp_path):
    path = write(tmp_path, "big.csv", "text,label\n" + "some text,1\n" * 200)
    message = refusal(path, Limits(max_bytes=1000))
    assert "big.csv is 2411 bytes" in message and "limit of 1000 bytes" in message


@pytest.mark.parametrize("name, body", [
    ("wide.csv", ",".join(f"c{i}" for i in range(1000)) + "\n" + ",".join("x" * 1000) + "\n"),
    ("wide.jsonl", json.dumps({f"c{i}": i for i in range(1000)}) + "\n"),
])
def test_refuses_a_thousand_columns(tmp_path, name, body):
    message = refusal(write(tmp_path, name, body))
    assert "1000 columns" in message or "more than 100 columns" in message
    assert "limit is 100" in message


def test_refuses_json_that_does_not_parse_with_line_number(tmp_path):
    body = '{"text": "a", "label": 1}\n{"text": "b", "label": 2}\n{"text": "c" "label": 3}\n'
    assert "line 3" in refusal(write(tmp_path, "d.jsonl", body))
    pretty = '[\n  {"text": "a"},\n  {"text": "b",}\n]'
    assert "line 3" in refusal(write(tmp_path, "d.json", pretty))


def test_refuses_jsonl_line_that_is_not_an_object(tmp_path):
    message = refusal(write(tmp_path, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n["c"]\n'))
    assert "line 3 is a list" in message


def test_refuses_mixed_types_in_a_column(tmp_path):
    body = '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": "b", "tags": ["O"]}\n'
    message = refusal(write(tmp_path, "d.jsonl", body))
    assert "mixed types in column 'tokens'" in message and "line 1" in message and "line 2" in message
    assert "row 2 is a string" in refusal(write(tmp_path, "d.json", '[{"text": "a"}, "b"]'))


def test_refuses_duplicate_header_and_bad_quoting(tmp_path):
    assert "column 'text' appears twice" in refusal(write(tmp_path, "d.csv", "text,label,text\na,b,c\n"))
    assert "line 3" in refusal(write(tmp_path, "q.csv", 'text,label\nok,1\n"broken" quote",1\n'))


def test_refuses_unknown_task_and_undetectable_columns(tmp_path):
    path = write(tmp_path, "d.csv", "foo,bar,baz\n1,2,3\n4,5,6\n")
    assert "cannot tell the task" in refusal(path)
    message = refusal(path, task="translation")
    assert "cannot find the columns for task translation" in message and "foo, bar, baz" in message
    assert "unknown task" in refusal(path, task="regression")


# ---- columns and mapping -------------------------------------------------------------------------

@pytest.mark.parametrize("columns, task", [
    (["sentence", "label"], "classification"), (["review", "sentiment"], "classification"),
    (["文本", "标签"], "classification"), (["content", "category"], "classification"),
    (["tokens", "ner_tags"], "ner"), (["src", "tgt"], "translation"), (["en", "de"], "translation"),
    (["en", "zh", "attribution"], "translation"), (["question", "answer"], "faq"),
    (["instruction", "input", "output"], "instruction"), (["messages"], "instruction"),
    (["conversations"], "instruction"), (["text"], "unsupervised"), (["id", "price"], None),
])
def test_guess_task_from_column_names(columns, task):
    assert guess_task(columns) == task


def test_guess_task_from_values_for_unnamed_label_column():
    records = [{"body_text": f"the body of review {i}", "stars": str(i % 3)} for i in range(30)]
    assert guess_task(["body_text", "stars"], records) == "classification"


def test_detect_columns_for_language_pair_and_alpaca():
    assert detect_columns(["id", "en", "zh"], "translation").roles == {"source": "en", "target": "zh"}
    alpaca = detect_columns(["instruction", "input", "output"], "instruction")
    assert alpaca.roles == {"prompt": "instruction", "input": "input", "response": "output"}


def test_mapping_override_picks_other_columns(tmp_path):
    rows = [{"title": f"short {i}", "body": f"the long body text number {i}", "topic": "a" if i % 2 else "b",
             "label": "x"} for i in range(12)]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows))
    detected = load_dataset_file(path)
    assert detected.mapping.roles == {"text": "body", "label": "label"}
    assert not detected.report.ok  # one class only
    override = ColumnMapping("classification", {"text": "title", "label": "topic"})
    loaded = load_dataset_file(path, mapping=override)
    assert loaded.report.ok and loaded.rows[0] == {"text": "short 0", "label": "b"}
    assert loaded.fingerprint != detected.fingerprint


def test_mapping_with_missing_column_or_role_is_refused(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\na,1\n")
    message = refusal(path, mapping=ColumnMapping("classification", {"text": "text", "label": "stars"}))
    assert "label -> 'stars'" in message and "Columns are: text, label" in message
    with pytest.raises(InputError, match="needs the roles text\\+label"):
        ColumnMapping("classification", {"text": "text"})
    with pytest.raises(InputError, match="task ner but task classification"):
        load_dataset_file(path, task="classification", mapping=ColumnMapping("ner", {"tokens": "a", "tags": "b"}))


def test_limits_are_checked():
    with pytest.raises(InputError, match="max_columns"):
        Limits(max_columns=0)

"""Validation problems (with row numbers), canonical conversion, tag schemes, the report and the split.

Over 300 lines on purpose: one table of bad rows per data format, read side by side.

Run: pytest tests/test_data_validation.py -q
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from finetune.data import ColumnMapping, Limits, load_dataset_file, split_train_validation, to_iob2

LOOSE = Limits(min_rows=1)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def csv_file(tmp_path: Path, rows: list[tuple[str, str]], name: str = "d.csv") -> Path:
    return write(tmp_path, name, "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))


def jsonl_file(tmp_path: Path, records: list[dict], name: str = "d.jsonl") -> Path:
    return write(tmp_path, name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def balanced(n: int = 12) -> list[tuple[str, str]]:
    return [(f"example text number {i}", "pos" if i % 2 else "neg") for i in range(n)]


def problems_at(loaded, severity: str) -> dict[int | None, str]:
    return {p.row: str(p) for p in loaded.report.problems if p.severity == severity}


# ---- classification ------------------------------------------------------------------------------

def test_clean_classification_report(tmp_path):
    loaded = load_dataset_file(csv_file(tmp_path, balanced()))
    report = loaded.report
    assert report.ok and report.problems == []
    assert (report.total_rows, report.valid_rows, report.dropped_rows) == (12, 12, 0)
    assert report.label_counts == {"neg": 6, "pos": 6}
    assert report.char_lengths.min == len("example text number 0") and report.char_lengths.max == len("example text number 11")
    assert "12 rows, 12 valid, 0 dropped" in report.summary()
    assert "| neg | 6 | 50.0% |" in report.to_markdown()


def test_empty_text_and_missing_label_name_the_line(tmp_path):
    rows = balanced() + [("", "pos"), ("no label here", "")]
    loaded = load_dataset_file(csv_file(tmp_path, rows))
    errors = problems_at(loaded, "error")
    assert errors[14].startswith("line 14, field 'text': is empty")
    assert "line 15, field 'label': label is empty" in errors[15] and "semi_supervised" in errors[15]
    assert not loaded.report.ok and loaded.report.dropped_rows == 2
    with pytest.raises(InputError, match="d.csv has 2 errors, so nothing was trained.*line 14"):
        loaded.raise_if_invalid()


def test_missing_field_in_jsonl(tmp_path):
    records = [{"text": t, "label": lab} for t, lab in balanced()] + [{"text": "orphan"}]
    errors = problems_at(load_dataset_file(jsonl_file(tmp_path, records), task="classification"), "error")
    assert "line 13, field 'label'" in errors[13]


def test_csv_row_with_too_many_fields(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in balanced())
                 + "great, cheap,pos\n")
    errors = problems_at(load_dataset_file(path), "error")
    assert "line 14: 3 fields but the header has 2" in errors[14] and "comma" in errors[14]


def test_one_class_only(tmp_path):
    loaded = load_dataset_file(csv_file(tmp_path, [(f"text {i}", "pos") for i in range(12)]))
    assert any("needs at least 2 classes" in p.message and "'pos'" in p.message for p in loaded.report.errors)


def test_float_labels_are_refused_unless_integral(tmp_path):
    whole = load_dataset_file(jsonl_file(tmp_path, [{"text": f"t {i}", "label": float(i % 2)} for i in range(12)]))
    assert whole.report.ok and whole.report.label_counts == {"0": 6, "1": 6}
    scores = [{"text": f"t {i}", "label": 0.5 * i} for i in range(12)]
    errors = load_dataset_file(jsonl_file(tmp_path, scores, "s.jsonl")).report.errors
    assert any(p.row == 2 and "not whole" in p.message for p in errors)


def test_numeric_labels_stay_strings_and_label_names_apply(tmp_path):
    path = write(tmp_path, "sst.tsv", "sentence\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(12)))
    plain = load_dataset_file(path)
    assert {r["label"] for r in plain.rows} == {"0", "1"}
    named = load_dataset_file(path, mapping=ColumnMapping("classification", {"text": "sentence", "label": "label"},
                                                          ["negative", "positive"]))
    assert named.report.label_counts == {"negative": 6, "positive": 6}
    partial = ColumnMapping("classification", {"text": "sentence", "label": "label"}, {"0": "negative"})
    errors = problems_at(load_dataset_file(path, mapping=partial), "error")
    assert "label '1' is not one of the label names given" in errors[3]


def test_duplicates_are_warnings_with_the_earlier_line(tmp_path):
    rows = balanced() + [("example  text number 3", "pos"), ("example text number 4", "pos")]
    loaded = load_dataset_file(csv_file(tmp_path, rows))
    warnings = problems_at(loaded, "warning")
    assert "line 14, field 'text': duplicate of line 5" == warnings[14]
    assert "same text as line 6 but a different label ('pos' vs 'neg')" in warnings[15]
    assert loaded.report.ok and len(loaded.rows) == 14


def test_too_few_rows(tmp_path):
    loaded = load_dataset_file(csv_file(tmp_path, balanced(4)))
    assert any("only 4 usable examples; at least 10" in p.message for p in loaded.report.errors)
    assert load_dataset_file(csv_file(tmp_path, balanced(4), "e.csv"), limits=Limits(min_rows=4)).report.ok


def test_semi_supervised_rows_and_unlabelled(tmp_path):
    rows = balanced() + [(f"unlabelled {i}", "") for i in range(6)]
    loaded = load_dataset_file(csv_file(tmp_path, rows))
    assert loaded.task == "semi_supervised"
    assert len(loaded.rows) == 12 and loaded.unlabelled[0] == {"text": "unlabelled 0"}
    assert (loaded.report.unlabelled_rows, loaded.report.dropped_rows) == (6, 0)


# ---- ner -----------------------------------------------------------------------------------------

def conll(sentences: list[list[tuple[str, str]]]) -> str:
    return "\n".join("".join(f"{tok} {tag}\n" for tok, tag in s) for s in sentences)


GOOD = [("Anna", "B-PER"), ("visits", "O"), ("Rome", "B-LOC")]


def test_conll_unknown_tag_names_its_line(tmp_path):
    body = conll([GOOD] * 10 + [[("Paris", "B_LOC"), ("is", "O"), ("big", "0")]])
    loaded = load_dataset_file(write(tmp_path, "d.conll", body))
    errors = problems_at(loaded, "error")
    assert "line 41" in errors[41] and "tag 'B_LOC'" in errors[41] and "B-LOC" in errors[41]
    assert "2 such tags" in errors[41]


def test_tag_outside_the_allowed_types(tmp_path):
    body = conll([GOOD] * 10 + [[("Monday", "B-DATE")]])
    loaded = load_dataset_file(write(tmp_path, "d.conll", body), entity_types=["PER", "LOC"])
    assert "line 41" in problems_at(loaded, "error")[41] and "'DATE'" in problems_at(loaded, "error")[41]
    assert load_dataset_file(write(tmp_path, "e.conll", body)).report.ok


def test_i_without_b_is_a_fixed_warning(tmp_path):
    body = conll([GOOD] * 10 + [[("the", "O"), ("New", "I-ORG"), ("Times", "I-ORG")]])
    loaded = load_dataset_file(write(tmp_path, "d.conll", body))
    warnings = problems_at(loaded, "warning")
    assert "line 42" in warnings[42] and "fixed to 'B-ORG'" in warnings[42]
    assert loaded.report.ok and loaded.rows[-1]["tags"] == ["O", "B-ORG", "I-ORG"]


def test_tokens_and_tags_of_different_lengths(tmp_path):
    records = [{"tokens": ["a", "b"], "tags": ["O", "O"]}] * 10 + [{"tokens": ["a", "b", "c"], "tags": ["O"]}]
    errors = problems_at(load_dataset_file(jsonl_file(tmp_path, records)), "error")
    assert "line 11" in errors[11] and "3 tokens but 1 tags" in errors[11]


def test_conll_token_without_tag(tmp_path):
    body = conll([GOOD] * 10) + "\nlonely\nword O\n"
    errors = problems_at(load_dataset_file(write(tmp_path, "d.conll", body)), "error")
    assert "line 41" in errors[41] and "has no tag" in errors[41]


def test_bmes_chinese_is_converted_to_iob2(tmp_path):
    sentence = [("吴", "B-NAME"), ("重", "M-NAME"), ("阳", "E-NAME"), ("，", "O"), ("男", "S-GENDER")]
    loaded = load_dataset_file(write(tmp_path, "resume.char.bmes", conll([sentence] * 10)))
    assert loaded.report.ok and loaded.rows[0]["tags"] == ["B-NAME", "I-NAME", "I-NAME", "O", "B-GENDER"]
    assert loaded.report.entity_counts == {"NAME": 10, "GENDER": 10}
    assert any("BMES" in note for note in loaded.report.notes)


def test_iob1_file_gets_a_note(tmp_path):
    body = conll([[("Anna", "I-PER"), ("visits", "O"), ("Rome", "I-LOC")]] * 10)
    loaded = load_dataset_file(write(tmp_path, "iob1.conll", body))
    assert loaded.report.ok and loaded.rows[0]["tags"] == ["B-PER", "O", "B-LOC"]
    assert any("20 entities started with I-" in note for note in loaded.report.notes)


def test_tsv_holding_token_tag_lines_is_read_as_conll(tmp_path):
    body = "\n".join("".join(f"{tok}\t{tag}\n" for tok, tag in GOOD) for _ in range(10))
    loaded = load_dataset_file(write(tmp_path, "ner.tsv", body))
    assert loaded.format == "conll" and loaded.task == "ner" and loaded.report.ok


def test_unpaired_surrogate_from_json_escape_is_an_error(tmp_path):
    path = write(tmp_path, "d.jsonl", "".join(f'{{"text": "t{i}", "label": "{i % 2}"}}\n' for i in range(11))
                 + '{"text": "bad \\ud800 char", "label": "1"}\n')
    errors = problems_at(load_dataset_file(path), "error")
    assert "line 12, field 'text': contains an invalid character" in errors[12]


@pytest.mark.parametrize("tags, expected, fixed", [
    (["S-PER", "B-LOC", "I-LOC", "E-LOC"], ["B-PER", "B-LOC", "I-LOC", "I-LOC"], []),
    (["B-PER", "L-PER", "U-ORG"], ["B-PER", "I-PER", "B-ORG"], []),
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-LOC"], [0, 4]),  # IOB1
    (["B-PER", "I-LOC"], ["B-PER", "B-LOC"], [1]),
])
def test_to_iob2(tags, expected, fixed):
    converted = to_iob2(tags)
    assert converted.tags == expected and converted.started_entity == fixed and converted.unknown == []


def test_numeric_ner_tags_need_names(tmp_path):
    records = [{"tokens": ["Anna", "runs"], "ner_tags": [1, 0]}] * 10
    path = jsonl_file(tmp_path, records)
    errors = problems_at(load_dataset_file(path), "error")
    assert "line 1, field 'ner_tags': tag 1 is not text" in errors[1]
    named = load_dataset_file(path, mapping=ColumnMapping("ner", {"tokens": "tokens", "tags": "ner_tags"},
                                                          ["O", "B-PER"]))
    assert named.report.ok and named.rows[0]["tags"] == ["B-PER", "O"]


# ---- translation, faq, instruction ---------------------------------------------------------------

def test_translation_problems(tmp_path):
    rows = [{"en": f"house {i}", "de": f"Haus {i}"} for i in range(10)] + [{"en": "same", "de": "same"},
                                                                       {"en": "no target", "de": ""}]
    loaded = load_dataset_file(jsonl_file(tmp_path, rows))
    assert loaded.task == "translation" and loaded.rows[0] == {"source": "house 0", "target": "Haus 0"}
    assert "identical to the source" in problems_at(loaded, "warning")[11]
    assert "line 12, field 'de': is empty" in problems_at(loaded, "error")[12]


def test_faq_with_context(tmp_path):
    rows = [{"question": f"q{i}?", "answer": f"a{i}", "context": "ctx" if i == 0 else ""} for i in range(10)]
    loaded = load_dataset_file(jsonl_file(tmp_path, rows))
    assert loaded.task == "faq" and loaded.rows[0] == {"question": "q0?\n\nctx", "answer": "a0"}
    instruction = load_dataset_file(jsonl_file(tmp_path, rows), task="instruction")
    assert instruction.rows[1]["messages"] == [{"role": "user", "content": "q1?"},
                                               {"role": "assistant", "content": "a1"}]


def test_alpaca_to_messages(tmp_path):
    rows = [{"instruction": "Translate to German", "input": f"house {i}", "output": f"Haus {i}"} for i in range(10)]
    loaded = load_dataset_file(jsonl_file(tmp_path, rows))
    assert loaded.task == "instruction"
    assert loaded.rows[0]["messages"] == [{"role": "user", "content": "Translate to German\n\nhouse 0"},
                                          {"role": "assistant", "content": "Haus 0"}]


def test_sharegpt_to_messages(tmp_path):
    conv = [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]
    rows = [{"id": i, "conversations": conv} for i in range(10)] + [
        {"id": 10, "conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "?"}]}]
    loaded = load_dataset_file(jsonl_file(tmp_path, rows), limits=LOOSE)
    assert loaded.task == "instruction"
    assert loaded.rows[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert "line 11" in problems_at(loaded, "error")[11] and "'robot'" in problems_at(loaded, "error")[11]


def test_messages_problems(tmp_path):
    ok = [{"role": "user", "content": f"Hi {i}"} for i in range(1)] + [{"role": "assistant", "content": "Hello"}]
    rows = [{"messages": [dict(m, content=f"{m['content']} {i}") for m in ok]} for i in range(10)] + [
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                      {"role": "user", "content": "and?"}]},
    ]
    loaded = load_dataset_file(jsonl_file(tmp_path, rows))
    errors, warnings = problems_at(loaded, "error"), problems_at(loaded, "warning")
    assert "no assistant turn" in errors[11] and "turn 2 (assistant)" in errors[12]
    assert "last turn is not from the assistant" in warnings[13]


def test_messages_as_json_string_in_csv(tmp_path):
    conv = json.dumps([{"role": "user", "content": "Hi, there"}, {"role": "assistant", "content": 'Say "hello"'}])
    quoted = '"' + conv.replace('"', '""') + '"'
    path = write(tmp_path, "chat.csv", "messages\n" + "".join(quoted + "\n" for _ in range(10)))
    loaded = load_dataset_file(path, task="instruction")
    assert loaded.rows[0]["messages"][1] == {"role": "assistant", "content": 'Say "hello"'}


# ---- unsupervised, tokens, fingerprint, split ---------------------------------------------------

def test_unsupervised_token_lengths_with_a_real_tokenizer(tmp_path):
    from tests.tiny_models import build_tokenizer

    tokenizer = build_tokenizer()
    body = "".join(f"Paragraph {i} talks about fine-tuning small models.\n" for i in range(12))
    loaded = load_dataset_file(write(tmp_path, "corpus.txt", body), tokenizer=tokenizer)
    expected = [len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) for r in loaded.rows]
    assert loaded.report.token_lengths.max == max(expected) and loaded.report.token_lengths.min == min(expected)
    assert "length in tokens" in loaded.report.summary()


def test_fingerprint_depends_on_bytes_and_mapping(tmp_path):
    first = load_dataset_file(csv_file(tmp_path, balanced(), "a.csv"))
    same = load_dataset_file(csv_file(tmp_path, balanced(), "b.csv"))
    changed = load_dataset_file(csv_file(tmp_path, balanced(13), "c.csv"))
    assert first.fingerprint == same.fingerprint != changed.fingerprint
    unlabelled = load_dataset_file(csv_file(tmp_path, balanced(), "a.csv"), task="unsupervised")
    assert unlabelled.fingerprint != first.fingerprint


def test_stratified_split_keeps_both_classes():
    rows = [{"text": f"t{i}", "label": "rare" if i < 3 else "common"} for i in range(40)]
    train, val = split_train_validation(rows, 0.1, seed=1)
    assert len(train) + len(val) == 40 and not {r["text"] for r in train} & {r["text"] for r in val}
    assert Counter(r["label"] for r in val) == {"common": 4, "rare": 1}
    assert {r["label"] for r in train} == {"rare", "common"}
    assert split_train_validation(rows, 0.1, seed=1) == (train, val)
    assert split_train_validation(rows, 0.1, seed=2) != (train, val)


def test_split_without_labels_and_bad_fraction():
    rows = [{"text": f"t{i}"} for i in range(20)]
    train, val = split_train_validation(rows, 0.25, seed=0)
    assert (len(train), len(val)) == (15, 5)
    assert split_train_validation(rows, 0.0) == (rows, [])
    with pytest.raises(InputError, match="fraction"):
        split_train_validation(rows, 1.0)


def test_rows_sharing_a_prompt_stay_on_one_side_of_the_split():
    # KTO rows from ratings: 10 questions with a rated reply (False) and its better answer (True), 6 with one reply up
    rows = [{"prompt": f"q{i}", "completion": f"{kind}{i}", "label": kind == "better"}
            for i in range(10) for kind in ("rated", "better")]
    rows += [{"prompt": f"solo{i}", "completion": f"up{i}", "label": True} for i in range(6)]
    train, val = split_train_validation(rows, 0.25, seed=0)
    assert len(train) + len(val) == len(rows)
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in val}
    held_pairs = {r["prompt"] for r in val if not r["label"]}
    assert len(held_pairs) == 2 and all(sum(r["prompt"] == p for r in val) == 2 for p in held_pairs)
    assert {r["prompt"] for r in val} - held_pairs  # the single "up" answers are held out too (their own stratum)

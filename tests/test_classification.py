"""Text classification: labels, validation, prompt, label scoring on the tiny model, metric, files.

    pytest tests/test_classification.py -q
"""

from __future__ import annotations

import pytest
import torch

from assistant.core.errors import InputError
from assistant.tasks import classification as C
from assistant.core.generation import encode_messages, score_continuations


def test_labels_split_on_ascii_and_chinese_commas():
    assert C.parse_labels("positive, negative") == ["positive", "negative"]
    assert C.parse_labels("正面，负面") == ["正面", "负面"]
    assert C.parse_labels(" sports ,finance，tech, ") == ["sports", "finance", "tech"]
    assert C.parse_labels(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("labels, message", [
    ("", "at least 2 labels"),
    ("positive", "at least 2 labels"),
    ("positive, negative, Positive", "Duplicate label 'Positive'"),
    (", ".join(f"l{i}" for i in range(51)), "at most 50"),
    ("ok, " + "x" * 101, "at most 100 characters"),
])
def test_bad_labels_are_rejected_with_the_fix(labels, message):
    with pytest.raises(InputError, match=message):
        C.parse_labels(labels)


def test_fifty_labels_are_allowed():
    assert len(C.parse_labels([f"label {i}" for i in range(50)])) == 50


def test_text_must_be_non_empty_and_at_most_100_kb():
    with pytest.raises(InputError, match="empty"):
        C.check_text("   \n ")
    assert C.check_text("a" * 100_000) == "a" * 100_000
    with pytest.raises(InputError, match="100,000 bytes"):
        C.check_text("a" * 100_001)
    with pytest.raises(InputError, match="100,002 bytes"):
        C.check_text("中" * 33_334)  # 3 bytes each in UTF-8


def test_prompt_lists_labels_and_text_and_training_example_uses_it():
    messages = C.build_messages("The film was great.", ["positive", "negative"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "positive, negative" in messages[1]["content"] and "The film was great." in messages[1]["content"]
    prompt, target = C.training_example({"text": " The film was great. ", "label": "positive"},
                                        labels=["positive", "negative"])
    assert prompt == messages and target == "positive"
    with pytest.raises(InputError, match="'neutral' is not one of"):
        C.training_example({"text": "ok", "label": "neutral"}, labels=["positive", "negative"])
    with pytest.raises(InputError, match="needs labels"):
        C.training_example({"text": "ok", "label": "positive"})


@pytest.mark.parametrize("answer, expected", [
    ("positive", "positive"),
    (" Negative.", "negative"),
    ("The sentiment is positive.", "positive"),
    ("I think it's negative, not positive", "negative"),
    ("no idea", None),
])
def test_parse_output_maps_free_text_to_a_label(answer, expected):
    assert C.parse_output(answer, ["positive", "negative"]) == expected


def test_parse_output_prefers_the_longer_label_at_the_same_position():
    assert C.parse_output("positively positive", ["pos", "positive"]) == "positive"


def test_metrics_on_hand_computed_values():
    refs = ["a", "a", "b", "b", "c"]
    preds = ["a", "b", "b", "b", "a"]
    scores = C.evaluate(preds, refs)
    assert scores["accuracy"] == pytest.approx(0.6)
    # F1: a = 0.5 (P 1/2, R 1/2), b = 0.8 (P 2/3, R 1), c = 0 -> macro 1.3 / 3
    assert scores["macro_f1"] == pytest.approx(1.3 / 3)
    assert scores["confusion"] == {"a": {"a": 1, "b": 1, "c": 0}, "b": {"a": 0, "b": 2, "c": 0},
                                   "c": {"a": 1, "b": 0, "c": 0}}
    assert C.evaluate(["a", None], ["a", "b"])["macro_f1"] == pytest.approx(0.5)  # no answer: b is missed
    with pytest.raises(InputError, match="pair up"):
        C.evaluate(["a"], ["a", "b"])


def test_scores_are_a_distribution_over_exactly_the_labels(tiny_loaded):
    labels = ["positive", "negative", "neutral"]
    result = C.classify(tiny_loaded, "The quick brown fox jumps over the lazy dog.", "positive, negative, neutral")
    assert list(result["scores"]) == labels
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert all(0.0 < p < 1.0 for p in result["scores"].values())
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    chinese = C.classify(tiny_loaded, "酒店位置很好，房间干净。", "正面，负面")
    assert set(chinese["scores"]) == {"正面", "负面"} and chinese["label"] in ("正面", "负面")


def test_batched_cached_scoring_equals_one_full_forward_per_label(tiny_loaded):
    tokenizer, model = tiny_loaded.tokenizer, tiny_loaded.model
    prompt = encode_messages(tokenizer, C.build_messages("Fine-tuning adapts a model.", ["sports", "technology"]))
    continuations = [tokenizer.encode(label, add_special_tokens=False) + [tokenizer.eos_token_id]
                     for label in ("sports", "technology", "finance news")]
    batched = score_continuations(tiny_loaded, prompt, continuations)
    for score, tokens in zip(batched, continuations):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([prompt + tokens])).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        expected = sum(float(logprobs[len(prompt) - 1 + i, token]) for i, token in enumerate(tokens))
        assert score == pytest.approx(expected, abs=1e-4)


def test_length_normalisation_changes_scores_but_keeps_a_distribution(tiny_loaded):
    plain = C.label_scores(tiny_loaded, "The house is small.", ["sports", "finance technology"])
    normalised = C.label_scores(tiny_loaded, "The house is small.", ["sports", "finance technology"],
                                length_normalize=True)
    assert sum(normalised.values()) == pytest.approx(1.0)
    assert plain != pytest.approx(normalised)


def test_table_text_column_is_found_and_predictions_written_back(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('id,review,stars\n1,"Great, really great",5\n2,Awful,1\n', encoding="utf-8")
    header, rows, column = C.read_text_table(csv_file)
    assert header[column] == "review" and [row[column] for row in rows] == ["Great, really great", "Awful"]

    tsv_file = tmp_path / "t.tsv"
    tsv_file.write_text('label\ttext\nx\tsays "hi" here\n', encoding="utf-8")
    header, rows, column = C.read_text_table(tsv_file)
    assert header[column] == "text" and rows[0][column] == 'says "hi" here'  # quotes are text in TSV

    results = [{"label": "pos", "scores": {"pos": 0.75, "neg": 0.25}}]
    out = C.write_predictions(tmp_path / "out.tsv", header, rows, results)
    assert out.read_text(encoding="utf-8").splitlines() == [
        "label\ttext\tprediction\tconfidence", 'x\tsays "hi" here\tpos\t0.7500']


def test_table_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,1\n  ,0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"'bad.csv' line 3: the 'text' column is empty"):
        C.read_text_table(bad)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no text column"):
        C.read_text_table(numbers)
    with pytest.raises(InputError, match="not a .csv, .tsv or .txt"):
        C.read_text_table(tmp_path / "data.xlsx")
    with pytest.raises(InputError, match=r"'big.csv' row 2 \(after the header\): The text is 100,001 bytes"):
        C.check_texts(["fine", "x" * 100_001], "big.csv")
    many = tmp_path / "many.txt"
    many.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(InputError, match="more than 2 rows; the limit here is 2"):
        C.read_text_table(many, max_rows=2)


@pytest.mark.real
def test_real_model_calls_an_obviously_positive_review_positive(real_chat_loaded):
    result = C.classify(real_chat_loaded, "I absolutely loved this movie! The acting was wonderful and "
                                          "I would happily watch it again.", "positive, negative")
    assert result["label"] == "positive"
    assert sum(result["scores"].values()) == pytest.approx(1.0)


def test_cli_classifies_a_table_and_exits_2_on_bad_flags(tiny_llm_dir, tmp_path, capsys):
    from assistant.tasks.__main__ import main

    table = tmp_path / "in.tsv"
    table.write_text("text\tlabel\nThe quick brown fox.\tx\n大模型通过预训练学习语言知识。\ty\n", encoding="utf-8")
    common = ["--input", str(table), "--model", str(tiny_llm_dir), "--quant", "fp32"]
    assert main(["classify", *common, "--labels", "positive", "--output", str(tmp_path / "o.tsv")]) == 2
    assert "at least 2 labels" in capsys.readouterr().err
    assert main(["classify", *common, "--labels", "a, b", "--output", str(tmp_path / "o.json")]) == 2
    assert "must end with .csv or .tsv" in capsys.readouterr().err
    assert main(["classify", *common, "--labels", "a, b", "--output", str(tmp_path / "no" / "o.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["classify", *common, "--labels", "正面, 负面", "--output", str(tmp_path / "o.tsv")]) == 0
    lines = (tmp_path / "o.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel\tprediction\tconfidence" and len(lines) == 3
    assert all(line.split("\t")[2] in ("正面", "负面") for line in lines[1:])

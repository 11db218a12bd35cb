"""Translation: language codes, detection, validation, prompt, output cleaning, line splitting,
sacrebleu metrics, the tiny model.

    pytest tests/test_translation.py -q
"""

from __future__ import annotations

import math

import pytest

from assistant.core.errors import InputError
from assistant.tasks import translation as T


def test_language_codes_and_names():
    assert T.language_code("de") == "de" and T.language_code(" German ") == "de"
    assert T.language_code("中文") == "zh" and T.language_code("日本語") == "ja"
    assert T.language_code("auto", allow_auto=True) == "auto"
    with pytest.raises(InputError, match=r"Unknown language 'auto'\. Valid codes: en \(English\), zh \(Chinese\), "
                                         r"de \(German\), fr \(French\), es \(Spanish\), ja \(Japanese\)\."):
        T.language_code("auto")
    with pytest.raises(InputError, match="Unknown language 'xx'.*ja \\(Japanese\\), or auto"):
        T.language_code("xx", allow_auto=True)


# Sample sentences by the language detection must find in them.
DETECTED = {
    "en": ["The weather is nice today, and I want to go for a walk.", "Hi.", "I visited 北京 last year with my family."],
    "zh": ["今天天气很好，我想去散步。", "我喜欢用Python写程序。"],
    "ja": ["今日はいい天気ですね。散歩に行きましょう。"],
    "de": ["Das Wetter ist heute schön und ich möchte spazieren gehen.", "Guten Morgen! Hast du gut geschlafen?"],
    "fr": ["Le chat est sur la table et il dort."],
    "es": ["El perro está en el jardín con los niños."],
}


@pytest.mark.parametrize("text, expected", [(text, lang) for lang, texts in DETECTED.items() for text in texts])
def test_auto_detection_on_samples(text, expected):
    assert T.detect_language(text) == expected


def test_detection_of_an_unsupported_script_asks_for_the_source():
    with pytest.raises(InputError, match="Choose the source language"):
        T.detect_language("Привет, как дела? 123")


def test_text_validation_limits():
    with pytest.raises(InputError, match="empty"):
        T.check_text("\n \n")
    with pytest.raises(InputError, match="limit is 20,000"):
        T.check_text("a" * 20_001)
    with pytest.raises(InputError, match="501 lines; the limit is 500"):
        T.check_text("a\n" * 500 + "a")
    assert T.check_text("a\r\nb") == "a\nb"


def test_prompt_and_training_example():
    system, user = T.build_messages(" Hello there. ", "en", "de")
    assert "into German" in system["content"]
    assert user == {"role": "user", "content": "Translate from English into German:\nHello there."}
    assert T.build_messages("Hi", "auto", "zh")[1]["content"] == "Translate into Chinese:\nHi"
    messages, target = T.training_example({"source": "Nice to meet you.", "target": "很高兴认识你。"}, "auto", "zh")
    assert messages == T.build_messages("Nice to meet you.", "en", "zh") and target == "很高兴认识你。"
    with pytest.raises(InputError, match="non-empty 'source' and 'target'"):
        T.training_example({"source": "Hi", "target": " "}, "en", "de")


@pytest.mark.parametrize("answer, expected", [
    ("Das Haus ist klein.", "Das Haus ist klein."),
    ("\n  Das Haus ist klein.\nNote: literal translation.", "Das Haus ist klein."),
    ("Translation: Das Haus ist klein.", "Das Haus ist klein."),
    ("German translation: „Das Haus ist klein.“", "Das Haus ist klein."),
    ("Here is the translation: \"Das Haus ist klein.\"", "Das Haus ist klein."),
    ("译文：房子很小。", "房子很小。"),
    ("", ""),
])
def test_parse_output_cleans_the_answer(answer, expected):
    assert T.parse_output(answer) == expected


def test_metrics_on_hand_computed_values():
    perfect = T.evaluate(["The house is small ."], ["The house is small ."])
    assert perfect == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    # All n-gram precisions are 1; brevity penalty exp(1 - 7/6) for 6 vs 7 reference tokens.
    short = T.evaluate(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert short["bleu"] == pytest.approx(100 * math.exp(1 - 7 / 6), abs=1e-3)
    # Chinese needs the zh tokenizer: with 13a the unsegmented sentence is one token and BLEU is 0.
    zh_pred, zh_ref = ["今天天气很好，我们去公园散步。"], ["今天天气很好，我们去公园走走。"]
    assert T.evaluate(zh_pred, zh_ref, "zh")["bleu"] > 40
    assert T.evaluate(zh_pred, zh_ref, "en")["bleu"] == pytest.approx(0.0)
    with pytest.raises(InputError, match="pair up"):
        T.evaluate(["a"], [])


def test_same_source_and_target_returns_lines_unchanged_without_the_model():
    assert T.translate_lines(None, ["Hello", "", "World"], "en", "en") == ["Hello", "", "World"]
    assert T.translate_lines(None, ["Hello there, my friend."], "auto", "en") == ["Hello there, my friend."]


def test_bad_languages_fail_before_the_model_runs():
    with pytest.raises(InputError, match="Unknown language 'klingon'"):
        T.translate(None, "Hello", "en", "klingon")
    with pytest.raises(InputError, match="empty"):
        T.translate(None, " \n\n ", "en", "de")


def test_lines_are_translated_one_by_one_keeping_blank_lines(tiny_loaded):
    text = "The house is small.\n\n  \nThe quick brown fox.\n"
    result = T.translate(tiny_loaded, text, "en", "de")
    lines = result.split("\n")
    assert len(lines) == len(text.split("\n")) == 5
    assert lines[1] == lines[2] == lines[4] == ""
    assert all("\n" not in line for line in lines)
    first_alone = T.translate(tiny_loaded, "The house is small.", "en", "de")
    assert lines[0] == first_alone  # each line is its own prompt, batched or not


@pytest.mark.real
def test_real_model_translates_each_line(real_chat_loaded):
    result = T.translate(real_chat_loaded, "Good morning!\n\nThank you very much.", "en", "de")
    lines = result.split("\n")
    assert len(lines) == 3 and lines[1] == "" and lines[0].strip() and lines[2].strip()


def test_cli_translates_a_file_line_by_line(tiny_llm_dir, tmp_path, capsys):
    from assistant.tasks.__main__ import main

    source = tmp_path / "in.txt"
    source.write_text("The house is small.\n\nThe dog.\n", encoding="utf-8")
    model = ["--model", str(tiny_llm_dir), "--quant", "fp32"]
    assert main(["translate", "--input", str(source), "--output", str(tmp_path / "o.txt"), "--target-lang", "xx",
                 *model]) == 2
    assert "Valid codes: en (English)" in capsys.readouterr().err
    assert main(["translate", "--input", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "o.txt"),
                 "--target-lang", "de", *model]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert main(["translate", "--input", str(source), "--output", str(source), "--target-lang", "de", *model]) == 2
    assert main(["translate", "--input", str(source), "--output", str(tmp_path / "o.txt"), "--target-lang", "de",
                 *model]) == 0
    lines = (tmp_path / "o.txt").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""


def test_stop_predicates_end_a_line_answer_or_a_loop():
    from assistant.core.generation import ends_first_line, stuck_in_a_loop

    assert not ends_first_line("\n\nDas Haus") and ends_first_line("\nDas Haus ist klein.\nNote")
    assert stuck_in_a_loop("Das ist ein anonenenenenenen") and stuck_in_a_loop("北京北京北京北京北京北京")
    assert not stuck_in_a_loop("Wait...... ok") and not stuck_in_a_loop("ha ha ha ha")

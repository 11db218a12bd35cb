"""The Classify, NER and Translate tabs: handlers, translations, queue settings and the
``/classify``, ``/ner``, ``/translate`` API endpoints called over HTTP with gradio_client.

    pytest tests/test_task_tabs.py -q
"""

from __future__ import annotations

import csv
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402
import pytest  # noqa: E402

from assistant.ui import classify_tab, ner_tab, translate_tab  # noqa: E402
from assistant.ui.i18n import build_i18n  # noqa: E402
from tests.app_server import serving  # noqa: E402


def build_demo(loaded) -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tab("Classify"):
            classify_tab.build_classify_tab(loaded)
        with gr.Tab("Entities"):
            ner_tab.build_ner_tab(loaded)
        with gr.Tab("Translate"):
            translate_tab.build_translate_tab(loaded)
    return demo


@pytest.fixture(scope="module")
def demo(tiny_loaded):
    return build_demo(tiny_loaded)


@pytest.fixture(scope="module")
def client(demo):
    from gradio_client import Client

    with serving(demo, build_i18n(*TABLES)) as url:
        yield Client(url, verbose=False)


TABLES = (classify_tab.TRANSLATIONS, ner_tab.TRANSLATIONS, translate_tab.TRANSLATIONS)


def test_translation_tables_merge_and_cover_both_languages():
    build_i18n(*TABLES)  # raises on a key defined twice
    for table in TABLES:
        assert set(table["en"]) == set(table["zh"])


def test_model_events_share_the_model_queue(demo):
    fills = [fn for fn in demo.fns.values() if fn.name == "load_example"]  # an example click fills the inputs...
    model_events = [fn for fn in demo.fns.values() if fn.name != "load_example"]  # ...everything else runs the model
    assert len(fills) == 3 and all(fn.api_visibility != "public" for fn in fills)
    assert len(model_events) == 13  # 3 API endpoints + 7 UI events + 3 example runs
    for fn in model_events:
        assert fn.concurrency_id == "model" and fn.concurrency_limit == 1, fn.name
    public = {fn.api_name for fn in model_events if fn.api_visibility == "public"}
    assert public == {"classify", "ner", "translate"}


def test_api_endpoints_return_the_documented_shapes(client):
    result = client.predict("The quick brown fox.", "positive, negative", api_name="/classify")
    assert set(result) == {"label", "scores"} and set(result["scores"]) == {"positive", "negative"}
    assert result["label"] in result["scores"]

    text = "Maria flew to Paris."
    entities = client.predict(text, "PER, LOC", api_name="/ner")
    assert isinstance(entities, list)
    for entity in entities:
        assert set(entity) == {"text", "type", "start", "end"} and text[entity["start"]:entity["end"]] == entity["text"]

    translated = client.predict("The house is small.\n\nThe dog.", "en", "de", api_name="/translate")
    assert isinstance(translated, str) and len(translated.split("\n")) == 3


def test_api_reports_bad_input_as_a_readable_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="at least 2 labels"):
        client.predict("Some text", "positive", api_name="/classify")
    with pytest.raises(AppError, match="Valid codes: en"):
        client.predict("Hello", "en", "xx", api_name="/translate")
    with pytest.raises(AppError, match="text is empty"):
        client.predict("  ", "PER", api_name="/ner")


def test_ui_handlers_turn_input_errors_into_gr_errors(tiny_loaded, tmp_uploads):
    tmp_path = tmp_uploads
    with pytest.raises(gr.Error, match="Duplicate label"):
        classify_tab.classify_for_ui(tiny_loaded, "text", "a, b, a")
    with pytest.raises(gr.Error, match="Upload a CSV"):
        classify_tab.classify_file(tiny_loaded, None, "a, b")
    with pytest.raises(gr.Error, match="text is empty"):
        ner_tab.entities_for_ui(tiny_loaded, "", "PER")
    not_text = tmp_path / "data.csv"
    not_text.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(gr.Error, match="not a .txt file"):
        translate_tab.translate_file(tiny_loaded, str(not_text), "auto", "de")


def test_classify_file_adds_prediction_and_confidence(tiny_loaded, tmp_uploads):
    tmp_path = tmp_uploads
    upload = tmp_path / "reviews.csv"
    upload.write_text("id,text\n1,The quick brown fox.\n2,\"Fine-tuning, again\"\n", encoding="utf-8")
    out = classify_tab.classify_file(tiny_loaded, str(upload), "positive, negative")
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [row["text"] for row in rows] == ["The quick brown fox.", "Fine-tuning, again"]
    assert all(row["prediction"] in ("positive", "negative") and 0.5 <= float(row["confidence"]) <= 1 for row in rows)


def test_ner_ui_value_matches_highlighted_text_format(tiny_loaded):
    highlighted, entities = ner_tab.entities_for_ui(tiny_loaded, "Maria flew to Paris.", "PER, LOC")
    assert highlighted["text"] == "Maria flew to Paris."
    assert len(highlighted["entities"]) == len(entities)
    gr.HighlightedText().postprocess(highlighted)  # accepted by the component


def test_translate_file_keeps_line_structure(tiny_loaded, tmp_uploads):
    tmp_path = tmp_uploads
    upload = tmp_path / "lines.txt"
    upload.write_text("The house is small.\n\nThe dog.\n", encoding="utf-8")
    out = translate_tab.translate_file(tiny_loaded, str(upload), "en", "de")
    lines = open(out, encoding="utf-8").read().split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert out.endswith("lines-de.txt")
    text, detected = translate_tab.translate_for_ui(tiny_loaded, "Das Haus ist klein.", "auto", "en")
    assert detected == "German (de)" and isinstance(text, str)


def test_training_finds_each_task_module_and_its_contract():
    from assistant.core.errors import InputError
    from finetune.encode import task_module

    for name in ("classification", "ner", "translation", "faq"):
        module = task_module(name)
        assert module.TASK_NAME == name and isinstance(module.PROMPT_VERSION, str)
        for function in ("build_messages", "training_example", "parse_output", "evaluate"):
            assert callable(getattr(module, function)), f"{name}.{function}"
    with pytest.raises(InputError, match="Unknown task 'summarize'. Tasks with a prompt: classification, ner"):
        task_module("summarize")

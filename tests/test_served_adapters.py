"""Serving trained adapters: attach on first use, switch per request, base stays reachable."""

import pytest
import torch

from assistant.chat import Chat, GenerationSettings
from assistant.core.errors import InputError
from assistant.core.loading import load_causal_lm
from assistant.served_adapters import ServedAdapters, head_entities, head_label_scores
from assistant.ui.adapter_choice import BASE_MODEL_CHOICE, picked_adapter, picker_choices
from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from tests.recipe_runs import run_new

GREEDY = GenerationSettings(temperature=0, max_new_tokens=12, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llm_dir, tiny_bert_dir):
    data_dir = tmp_path_factory.mktemp("data")
    common = dict(data="finetune/samples/sentiment_en.csv", max_steps=3, batch_size=8, eval_limit=4,
                  learning_rate=5e-2, data_dir=str(data_dir))
    run_new(FinetuneConfig(task="classification", base=str(tiny_llm_dir), output="sentiment", **common))
    run_new(FinetuneConfig(task="classification", base=str(tiny_bert_dir), approach="head", output="head", **common))
    return AdapterStore(data_dir / "adapters")


def test_choices_list_compatible_generative_adapters(trained, tiny_llm_dir):
    adapters = ServedAdapters(load_causal_lm(str(tiny_llm_dir), "fp32"), trained, str(tiny_llm_dir))
    assert adapters.adapter_names() == ["sentiment"]
    assert set(adapters.adapter_names(heads=True)) == {"sentiment", "head"}
    assert adapters.adapter_names(task="translation") == []
    assert picker_choices(adapters) == [BASE_MODEL_CHOICE, "sentiment"]
    assert picked_adapter(BASE_MODEL_CHOICE) is None and picked_adapter("") is None
    assert picked_adapter("sentiment") == "sentiment"


def test_adapter_changes_the_reply_and_the_base_stays_available(trained, tiny_llm_dir):
    loaded = load_causal_lm(str(tiny_llm_dir), "nf4")
    chat = Chat(loaded, ServedAdapters(loaded, trained, str(tiny_llm_dir)))
    base_before = chat.reply("great film, loved it", settings=GREEDY)
    with_adapter = chat.reply("great film, loved it", settings=GREEDY, adapter="sentiment")
    base_after = chat.reply("great film, loved it", settings=GREEDY, adapter=None)
    assert with_adapter != base_before
    assert base_after == base_before


def test_incompatible_or_head_adapter_is_a_clear_error(trained, tiny_llm_dir, tmp_path):
    import shutil

    other = shutil.copytree(tiny_llm_dir, tmp_path / "other-model")
    adapters = ServedAdapters(load_causal_lm(str(other), "fp32"), trained, str(other))
    assert adapters.adapter_names() == []
    with pytest.raises(InputError, match="trained on"):
        with adapters.using("sentiment"):
            pass
    with pytest.raises(InputError, match="classifier-head adapter"):
        with adapters.using("head"):
            pass


def test_head_adapter_scores_labels(trained, tiny_llm_dir):
    adapters = ServedAdapters(load_causal_lm(str(tiny_llm_dir), "fp32"), trained, str(tiny_llm_dir))
    scores = head_label_scores(adapters.head("head"), "what a wonderful evening")
    assert set(scores) == {"negative", "positive"} and abs(sum(scores.values()) - 1) < 1e-5


def test_head_entities_offsets_are_exact(tmp_path, tiny_bert_dir):
    from transformers import AutoModelForTokenClassification

    from assistant.core.loading import load_tokenizer
    from assistant.served_adapters import HeadModel

    labels = ["O", "B-LOC", "I-LOC"]
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(str(tiny_bert_dir), num_labels=3).eval()
    text = "Paris and  Berlin are cities"
    for entity in head_entities(HeadModel(model, load_tokenizer(str(tiny_bert_dir)), labels, "ner"), text):
        assert text[entity["start"]:entity["end"]] == entity["text"]


def test_task_tabs_run_the_chosen_adapter(trained, tiny_llm_dir):
    import gradio as gr

    from assistant.tasks import classification
    from assistant.ui.adapter_choice import run_with_adapter

    loaded = load_causal_lm(str(tiny_llm_dir), "fp32")
    adapters = ServedAdapters(loaded, trained, str(tiny_llm_dir))

    def generative():
        return classification.classify(loaded, "a lovely day", "negative, positive")["scores"]

    base = run_with_adapter(adapters, BASE_MODEL_CHOICE, "classification", generative)
    tuned = run_with_adapter(adapters, "sentiment", "classification", generative)
    assert set(base) == set(tuned) == {"negative", "positive"} and base != tuned
    head = run_with_adapter(adapters, "head", "classification", generative,
                            lambda h: head_label_scores(h, "a lovely day"))
    assert set(head) == {"negative", "positive"}
    with pytest.raises(gr.Error, match="classification head; it cannot run the ner task"):
        run_with_adapter(adapters, "head", "ner", generative, lambda h: None)

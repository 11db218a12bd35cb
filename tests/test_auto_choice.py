"""``--base auto``: the base and approach picked from task, data language and device, end to end."""

import json

import pytest

from finetune.auto_choice import GENERATIVE_BASE, HEAD_BASE, choose_base, data_language, resolve_auto
from finetune.config import FinetuneConfig


@pytest.mark.parametrize("task, language, device, rows, expected", [
    ("classification", "en", "cpu", 100, (HEAD_BASE, "head")),
    ("ner", "en", "cpu", 100, (HEAD_BASE, "head")),
    ("classification", "zh", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("ner", "zh", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("translation", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("faq", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("unsupervised", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("classification", "en", "cuda", 100, (GENERATIVE_BASE, "generative")),
    ("classification", "en", "cuda", 50_000, (HEAD_BASE, "head")),
])
def test_choose_base(task, language, device, rows, expected):
    choice = choose_base(task, language, device, rows)
    assert (choice.base, choice.approach) == expected and choice.reason


def test_an_explicit_approach_keeps_it_and_picks_the_matching_base():
    assert choose_base("classification", "zh", "cpu", approach="head").base == HEAD_BASE
    assert choose_base("classification", "en", "cpu", approach="generative").base == GENERATIVE_BASE


def test_data_language_reads_text_tokens_and_sources():
    assert data_language([{"text": "这部电影很好看", "label": "1"}] * 3 + [{"text": "fine", "label": "0"}]) == "zh"
    assert data_language([{"tokens": ["张", "三", "在", "北", "京"], "tags": ["O"] * 5}]) == "zh"
    assert data_language([{"text": "A fine film about the iPhone 15", "label": "1"}]) == "en"
    assert data_language([{"source": "Hello", "target": "你好"}]) == "en"
    assert data_language([]) == "en"


def test_resolve_auto_fills_in_base_and_approach_and_leaves_explicit_bases_alone():
    config, choice = resolve_auto(FinetuneConfig(data="x.csv", task="ner"), [{"tokens": ["Ann"], "tags": ["B-PER"]}], "cpu")
    assert (config.base, config.approach, config.resolved_approach) == (HEAD_BASE, "head", "head") and choice
    explicit = FinetuneConfig(data="x.csv", base=GENERATIVE_BASE)
    assert resolve_auto(explicit, [], "cpu") == (explicit, None)


@pytest.mark.real
def test_the_default_cli_run_trains_the_head_and_records_why(tmp_path):
    """No --base: English sentiment on a CPU trains the MiniLM head, and the adapter says why."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "finetune", "--task", "classification", "--data",
                             "finetune/samples/sentiment_en.csv", "--max-steps", "4", "--output", "auto-default",
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((tmp_path / "adapters" / "auto-default" / "metadata.json").read_text())
    assert (meta["base_model"], meta["approach"]) == (HEAD_BASE, "head") and "CPU" in meta["base_choice"]
    assert meta["hyperparameters"]["base"] == HEAD_BASE

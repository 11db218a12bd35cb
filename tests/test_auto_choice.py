"""``--base auto``: the base and approach picked from task, data language and device, end to end.

    pytest tests/test_auto_choice.py -q          # the rule; -m real adds the default CLI run
"""

import json

import pytest

from finetune.auto_choice import (CHINESE_BASE, GENERATIVE_BASE, HEAD_BASE, choose_base, data_language, resolve_auto,
                                  writes_chinese)
from finetune.config import FinetuneConfig


@pytest.mark.parametrize("task, language, device, rows, expected", [
    ("classification", "en", "cpu", 100, (HEAD_BASE, "head")),
    ("ner", "en", "cpu", 100, (HEAD_BASE, "head")),
    ("classification", "zh", "cpu", 100, (CHINESE_BASE, "generative")),
    ("ner", "zh", "cpu", 100, (CHINESE_BASE, "generative")),
    ("classification", "zh", "cuda", 50_000, (CHINESE_BASE, "generative")),
    ("faq", "zh", "cpu", 100, (CHINESE_BASE, "generative")),
    ("instruction", "zh", "cpu", 100, (CHINESE_BASE, "generative")),
    ("translation", "zh", "cpu", 100, (CHINESE_BASE, "generative")),
    ("translation", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("faq", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("unsupervised", "en", "cpu", 100, (GENERATIVE_BASE, "generative")),
    ("classification", "en", "cuda", 100, (GENERATIVE_BASE, "generative")),
    ("classification", "en", "cuda", 50_000, (HEAD_BASE, "head")),
])
def test_choose_base(task, language, device, rows, expected):
    choice = choose_base(task, language, device, rows)
    assert (choice.base, choice.approach) == expected and choice.reason


@pytest.mark.parametrize("target_lang, expected", [
    ("zh", CHINESE_BASE), ("Chinese", CHINESE_BASE), ("中文", CHINESE_BASE), ("zh-CN", CHINESE_BASE),
    ("de", GENERATIVE_BASE), ("en", GENERATIVE_BASE), ("", GENERATIVE_BASE), ("klingon", GENERATIVE_BASE),
])
def test_translation_into_chinese_goes_to_qwen(target_lang, expected):
    """English source text, Chinese target: the adapter must write Chinese, which SmolLM2 does poorly."""
    choice = choose_base("translation", "en", "cpu", 100, target_lang=target_lang)
    assert (choice.base, choice.approach) == (expected, "generative")
    assert ("Chinese" in choice.reason) == (expected == CHINESE_BASE)


def test_only_translation_looks_at_the_target_language():
    assert not writes_chinese("classification", "zh") and writes_chinese("translation", "zh")
    assert choose_base("classification", "en", "cpu", target_lang="zh").base == HEAD_BASE
    assert choose_base("faq", "en", "cpu", target_lang="zh").base == GENERATIVE_BASE


def test_an_explicit_approach_keeps_it_and_picks_the_matching_base():
    assert choose_base("classification", "zh", "cpu", approach="head").base == HEAD_BASE
    assert choose_base("classification", "en", "cpu", approach="generative").base == GENERATIVE_BASE
    assert choose_base("classification", "zh", "cpu", approach="generative").base == CHINESE_BASE
    assert choose_base("translation", "en", "cpu", approach="generative", target_lang="zh").base == CHINESE_BASE


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


def test_resolve_auto_sends_chinese_rows_and_chinese_targets_to_qwen():
    rows = [{"text": "房间干净，服务热情", "label": "正面"}, {"text": "隔音太差", "label": "负面"}]
    config, choice = resolve_auto(FinetuneConfig(data="x.jsonl"), rows, "cpu")
    assert (config.base, config.approach) == (CHINESE_BASE, "generative") and "Chinese" in choice.reason
    english = [{"text": "A wonderful film", "label": "positive"}]
    assert resolve_auto(FinetuneConfig(data="x.csv"), english, "cpu")[0].base == HEAD_BASE
    pairs = [{"source": "Good morning", "target": "早上好"}]
    to_chinese = FinetuneConfig(data="x.jsonl", task="translation", source_lang="en", target_lang="zh")
    assert resolve_auto(to_chinese, pairs, "cpu")[0].base == CHINESE_BASE
    to_german = FinetuneConfig(data="x.jsonl", task="translation", source_lang="en", target_lang="de")
    assert resolve_auto(to_german, [{"source": "Good morning", "target": "Guten Morgen"}], "cpu")[0].base == \
        GENERATIVE_BASE


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

"""Merge-and-export (finetune/export.py and the panel's Merge and export button).

    pytest tests/test_export.py -q

Real adapters trained on the tiny Llama (QLoRA) and the tiny BERT (classifier head); the merged folders are
loaded back with plain ``transformers`` and must compute what base + PEFT adapter computes.
"""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from assistant.core.errors import InputError, UserError
from finetune.adapters import AdapterStore
from finetune.export import MARKER, export_merged, main

SAMPLE = "finetune/samples/sentiment_en.csv"
TEXTS = ["The headphones are light and the battery lasts a week.", "Support never answered my emails."]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_llm_dir, tiny_bert_dir):
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    data_dir = tmp_path_factory.mktemp("export-data")
    # A high learning rate, so that two steps move the logits well beyond the comparison tolerance.
    for base, name in ((tiny_llm_dir, "a"), (tiny_bert_dir, "head")):
        run_new(FinetuneConfig(task="classification", data=SAMPLE, base=str(base), max_steps=2, eval_limit=4,
                           learning_rate=0.05, data_dir=str(data_dir), output=name))
    return AdapterStore(data_dir / "adapters")


def _encode(folder, texts=TEXTS):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer(texts, return_tensors="pt", padding=True)


@torch.no_grad()
def test_merged_causal_lm_computes_what_base_plus_adapter_computes(store, tiny_llm_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    info = store.get("a")
    folder = export_merged(info, tmp_path / "merged" / "a")
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            MARKER} <= {p.name for p in folder.iterdir()}
    assert not (folder / "adapter_config.json").exists()
    assert [p.name for p in folder.parent.iterdir()] == ["a"]  # no temporary folder left beside it
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "float32" and "quantization_config" not in config  # full precision, never 4-bit
    assert json.loads((folder / MARKER).read_text())["adapter"] == "a"

    batch = _encode(folder)
    merged = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir), dtype=torch.float32).eval()
    peft_model = PeftModel.from_pretrained(base, str(info.path)).eval()
    expected = peft_model(**batch).logits
    with peft_model.disable_adapter():
        base_logits = peft_model(**batch).logits
    assert (expected - base_logits).abs().max() > 1e-2, "the adapter changes nothing: the test would prove nothing"
    torch.testing.assert_close(merged(**batch).logits, expected, atol=1e-4, rtol=0)


@torch.no_grad()
def test_head_adapter_exports_an_encoder_with_its_trained_head(store, tiny_bert_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    info = store.get("head")
    assert info.kind == "encoder-head-lora"
    folder = export_merged(info, tmp_path / "head")
    merged = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    assert merged.config.id2label == dict(enumerate(info.labels))

    labels = info.labels
    base = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert_dir), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}).eval()
    batch = _encode(folder)
    expected = PeftModel.from_pretrained(base, str(info.path)).eval()(**batch).logits
    torch.testing.assert_close(merged(**batch).logits, expected, atol=1e-4, rtol=0)


def test_an_existing_folder_is_replaced_only_when_it_is_an_earlier_export(store, tmp_path):
    info = store.get("a")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("my files")
    with pytest.raises(InputError, match="already exists"):
        export_merged(info, mine)
    with pytest.raises(InputError, match="not an earlier export"):
        export_merged(info, mine, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]

    first = export_merged(info, tmp_path / "out")
    stamp = json.loads((first / MARKER).read_text())["exported"]
    (first / "stale.txt").write_text("from an older export")
    again = export_merged(info, tmp_path / "out", overwrite=True)
    assert again == first and not (again / "stale.txt").exists() and (again / "model.safetensors").is_file()
    assert json.loads((again / MARKER).read_text())["exported"] >= stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]


def test_cli_exports_and_explains_refusals(store, tmp_path, capsys):
    data_dir = str(store.root.parent)
    target = tmp_path / "cli"
    assert main(["a", "--output", str(target), "--data-dir", data_dir, "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == str(target.resolve())
    assert main(["a", "--output", str(target), "--data-dir", data_dir]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["nope", "--output", str(tmp_path / "x"), "--data-dir", data_dir]) == 2
    assert "no adapter named 'nope'" in capsys.readouterr().err


def test_panel_merge_writes_data_dir_exports_and_offers_a_zip(store, tmp_path):
    from assistant.ui.adapters_panel import export_adapter

    with pytest.raises(InputError, match="Pick the adapter"):
        export_adapter(store, None, tmp_path)
    archive = export_adapter(store, "a", tmp_path / "exports")
    assert archive == tmp_path / "exports" / "a.zip" and (tmp_path / "exports" / "a" / MARKER).is_file()
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
    assert {"a/config.json", "a/model.safetensors", "a/tokenizer.json", f"a/{MARKER}"} <= names
    again = export_adapter(store, "a", tmp_path / "exports")  # pressing the button twice replaces the export
    assert again == archive and sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["a", "a.zip"]


def test_broken_adapters_are_refused(store, tmp_path):
    import dataclasses

    info = dataclasses.replace(store.get("a"), broken="adapter_model.safetensors is missing")
    with pytest.raises(UserError, match="cannot be exported"):
        export_merged(info, tmp_path / "never")
    assert not (tmp_path / "never").exists()

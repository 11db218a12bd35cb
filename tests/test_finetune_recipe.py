"""The QLoRA recipe end to end on tiny in-code models: what changes, what must not, stop/resume."""

import json
import math
import threading

import pytest
import torch
from safetensors.torch import load_file

from assistant.core.errors import InputError
from assistant.core.machine_settings import MachineSettings
from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from tests.recipe_runs import run_new, run_resumed

SAMPLES = "finetune/samples"


def config(tmp_path, base, **overrides) -> FinetuneConfig:
    values = dict(task="classification", data=f"{SAMPLES}/sentiment_en.csv", base=str(base), max_steps=4,
                  batch_size=4, eval_limit=6, save_every=2, data_dir=str(tmp_path / "data"), output="test-adapter")
    values.update(overrides)
    return FinetuneConfig(**values)


def test_qlora_changes_adapter_weights_and_not_the_base(tmp_path, tiny_llm_dir):
    import bitsandbytes as bnb

    from finetune.encode import encode_supervised
    from finetune.loop import LoopSettings, train
    from finetune.models import build_generative

    model, _ = build_generative(config(tmp_path, tiny_llm_dir), MachineSettings())
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()), "QLoRA base must be 4-bit"
    probe = torch.tensor([[5, 17, 42, 99, 7]])

    def base_logits():
        with torch.no_grad(), model.disable_adapter():
            return model(input_ids=probe).logits.clone()

    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    # 4-bit weights may be repacked for the CPU kernel on first use, so compare what they compute
    # (base logits) and compare every float base parameter exactly.
    float_before = {n: p.detach().clone() for n, p in model.named_parameters()
                    if "lora_" not in n and p.dtype.is_floating_point}
    logits_before = base_logits()

    rows = [{"text": "great film", "label": "positive"}, {"text": "awful food", "label": "negative"}] * 4
    examples = encode_supervised("classification", rows, _tok(tiny_llm_dir), 64, {"labels": ["negative", "positive"]})
    (tmp_path / "run").mkdir()
    train(model, examples, examples[:2], LoopSettings(1e-2, 4, 1, 3, 3, 100, 0), 0, tmp_path / "run")

    after = dict(model.named_parameters())
    assert any(not torch.equal(lora_before[n], after[n]) for n in lora_before), "LoRA weights did not move"
    for name, tensor in float_before.items():
        assert torch.equal(tensor, after[name].detach()), f"base weight {name} changed"
    assert torch.allclose(logits_before, base_logits()), "the frozen 4-bit base computes something else now"


def _tok(folder):
    from assistant.core.loading import load_tokenizer

    return load_tokenizer(str(folder))


def test_run_saves_a_standard_peft_adapter_with_metadata(tmp_path, tiny_llm_dir):
    summary = run_new(config(tmp_path, tiny_llm_dir))
    folder = tmp_path / "data" / "adapters" / "test-adapter"
    assert summary.status == "finished" and summary.adapter_path == str(folder.resolve())
    assert {"adapter_config.json", "adapter_model.safetensors", "metadata.json", "metrics.jsonl"} <= {
        p.name for p in folder.iterdir()}
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["task"] == "classification" and meta["labels"] == ["negative", "positive"]
    assert set(meta["metrics"]) == {"base", "adapter"} and "accuracy" in meta["metrics"]["adapter"]
    assert meta["base_model"] == str(tiny_llm_dir) and len(meta["data_fingerprint"]) >= 16
    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)


def test_stop_keeps_a_checkpoint_and_resume_continues_the_step_count(tmp_path, tiny_llm_dir):
    cfg = config(tmp_path, tiny_llm_dir, max_steps=6, output="resumed")
    stop = threading.Event()
    seen = []

    def on_event(kind, payload):
        if kind == "step":
            seen.append(payload["step"])
            if payload["step"] == 3:
                stop.set()

    first = run_new(cfg, on_event, stop_event=stop)
    assert first.status == "stopped" and first.steps == 3 and seen == [1, 2, 3]
    assert AdapterStore(tmp_path / "data" / "adapters").list() == [], "a stopped run saves no adapter"

    resumed_steps = []
    second = run_resumed(cfg, first.run_id, lambda k, p: k == "step" and resumed_steps.append(p["step"]))
    assert second.status == "finished" and resumed_steps == [4, 5, 6]
    log = (tmp_path / "data" / "runs" / first.run_id / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4, 5, 6]
    schedule = [cfg.learning_rate * f for f in (0.0, 1.0, 0.8, 0.6, 0.4, 0.2)]  # 1 warm-up step, linear decay
    assert [json.loads(line)["lr"] for line in log] == pytest.approx(schedule), "Resume continues the LR schedule"


def test_a_failing_run_leaves_the_adapter_list_intact(tmp_path, tiny_llm_dir):
    assert run_new(config(tmp_path, tiny_llm_dir, output="keeper", max_steps=2)).status == "finished"
    store = AdapterStore(tmp_path / "data" / "adapters")
    before = [a.name for a in store.list()]

    def explode(kind, payload):
        if kind == "metrics":
            raise RuntimeError("simulated crash while saving")

    with pytest.raises(RuntimeError):
        run_new(config(tmp_path, tiny_llm_dir, output="broken", max_steps=2), explode)
    assert [a.name for a in AdapterStore(tmp_path / "data" / "adapters").list()] == before
    assert not [p for p in (tmp_path / "data" / "adapters").iterdir() if p.name.startswith(".")]


def test_encoder_head_on_tiny_bert(tmp_path, tiny_bert_dir):
    summary = run_new(config(tmp_path, tiny_bert_dir, approach="head", output="head", max_steps=3))
    meta = json.loads((tmp_path / "data" / "adapters" / "head" / "metadata.json").read_text())
    assert meta["kind"] == "encoder-head-lora" and summary.status == "finished"
    weights = load_file(tmp_path / "data" / "adapters" / "head" / "adapter_model.safetensors")
    assert any("classifier" in k for k in weights), "the trained head is saved inside the adapter"


def test_unsupervised_continued_pretraining_reports_perplexity(tmp_path, tiny_llm_dir):
    summary = run_new(config(tmp_path, tiny_llm_dir, task="unsupervised", method="unsupervised",
                         data=f"{SAMPLES}/domain_text.txt", output="cpt", max_steps=3, max_seq_len=64))
    assert set(summary.metrics["adapter"]) == {"loss", "perplexity"}


def test_semi_supervised_trains_a_second_round_on_its_pseudo_labels(tmp_path, tiny_bert_dir):
    """The sample has 60 labelled and 140 unlabelled rows and two labels: the top probability of two labels is
    at least 1/2, so a threshold of 0.5 keeps every unlabelled row, whatever the (random) tiny model predicts.
    With steps from epochs (max_steps 0) the second round's length follows from its rows (every step of it:
    early stopping off, tests/test_early_stopping.py covers round 2 with it)."""
    summary = run_new(config(tmp_path, tiny_bert_dir, approach="head", method="semi-supervised", output="semi",
                         data=f"{SAMPLES}/sentiment_semi_en.csv", max_steps=0, epochs=1.0, batch_size=16,
                         pseudo_label_threshold=0.5, early_stopping_patience=0))
    meta = json.loads((tmp_path / "data" / "adapters" / "semi" / "metadata.json").read_text())
    labelled = meta["train_rows"]
    assert labelled + meta["validation_rows"] == 60 and summary.pseudo_labels_used == meta["pseudo_labels_used"] == 140
    assert summary.round_2 == meta["round_2"] == {"pseudo_labels": 140, "examples": labelled + 140,
                                                  "steps": math.ceil((labelled + 140) / 16)}
    assert summary.steps == meta["steps"] == math.ceil(labelled / 16) + math.ceil((labelled + 140) / 16)


def test_invalid_data_trains_and_saves_nothing(tmp_path, tiny_llm_dir):
    bad = tmp_path / "one_class.csv"
    bad.write_text("text,label\n" + "".join(f"row {i},positive\n" for i in range(20)))
    with pytest.raises(InputError):
        run_new(config(tmp_path, tiny_llm_dir, data=str(bad)))
    assert not (tmp_path / "data" / "adapters").exists() or not list((tmp_path / "data" / "adapters").iterdir())


@pytest.mark.parametrize("task, data, metric", [
    ("ner", "ner_en.conll", "f1"),
    ("translation", "translation_en_de.jsonl", "bleu"),
    ("instruction", "chat_messages.jsonl", "perplexity"),
    ("instruction", "faq_instructions.jsonl", "perplexity"),
])
def test_every_generative_task_trains_and_evaluates(tmp_path, tiny_llm_dir, task, data, metric):
    summary = run_new(config(tmp_path, tiny_llm_dir, task=task, data=f"{SAMPLES}/{data}", output=f"t-{task}",
                         max_steps=2, eval_limit=3, max_seq_len=128))
    assert summary.status == "finished"
    assert metric in summary.metrics["adapter"] and metric in summary.metrics["base"]


def test_ner_head_evaluation_counts_words_cut_by_max_seq_len_as_outside(tmp_path, tiny_bert_dir):
    from finetune.evaluate import _head_metrics
    from finetune.models import build_head

    labels = ["O", "B-PER", "I-PER"]
    cfg = config(tmp_path, str(tiny_bert_dir), task="ner", approach="head", quant="none")
    model, tokenizer = build_head(cfg, labels, True, MachineSettings())
    rows = [{"tokens": ["Ann", "met", "Bob"] * 20, "tags": ["B-PER", "O", "B-PER"] * 20},
            {"tokens": ["Hi", "Ann"], "tags": ["O", "B-PER"]}]
    metrics = _head_metrics("ner", model, tokenizer, rows, labels, max_len=16)  # the first row is cut
    assert metrics["truncated_sentences"] == 1 and 0.0 <= metrics["f1"] <= 1.0

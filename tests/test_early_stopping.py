"""Early stopping: the best validation step's weights are kept, training stops when validation loss stops
improving (patience; 0 = every step), Stop/Resume keeps the state, the preference trainers do the same,
the tab and the estimate show it. Tiny in-code models; validation data that training makes worse (the same
prompts with other answers, the same texts with the other label, the same pairs with chosen and rejected
swapped), so validation loss must turn up.

    pytest tests/test_early_stopping.py -q
"""

import csv
import dataclasses
import json
import math
import threading

import pytest
import torch
from safetensors.torch import load_file

from assistant.core.errors import InputError
from finetune.config import FinetuneConfig
from finetune.early_stopping import EarlyStopping, trainable_weights
from finetune.loop import LoopSettings, load_checkpoint, train
from tests.recipe_runs import run_new, run_resumed

SAMPLES = "finetune/samples"
LABELS = ["negative", "positive"]
TEXTS = ["great film", "awful food", "lovely staff", "rude waiter", "superb plot", "boring show", "kind nurse",
         "cold soup", "fine wine", "dull book", "warm room", "slow bus"]


def _rows(flipped: bool) -> list[dict]:
    """Each text with its label, or with the other one (validation that learning the training rows worsens)."""
    return [{"text": t, "label": LABELS[(i % 2 == 0) != flipped]} for i, t in enumerate(TEXTS)]


def _lora_model(tiny_llm_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    return get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))


def _examples(first_answer: int) -> list[dict]:
    """Six fixed prompts of five token ids, each answered by one token (``first_answer`` + its index)."""
    from finetune.encode import IGNORE

    prompts = torch.randint(10, 200, (6, 5), generator=torch.Generator().manual_seed(1)).tolist()
    return [{"input_ids": p + [first_answer + i], "labels": [IGNORE] * 5 + [first_answer + i]}
            for i, p in enumerate(prompts)]


def _train(tiny_llm_dir, run_dir, patience, total=30, stop_at=None, resume=False, model=None):
    """Train on the prompts' answers, validate on other answers to them every step; returns (result, model,
    weights by validated step)."""
    model = model or _lora_model(tiny_llm_dir)
    run_dir.mkdir(exist_ok=True)
    weights, stop = {}, threading.Event()

    def on_step(record):
        if record.get("val_loss") is not None:
            weights[record["step"]] = trainable_weights(model)
        if record["step"] == stop_at:
            stop.set()

    settings = LoopSettings(2e-2, 6, 1, total, 1, 100, 0, "off", patience)
    result = train(model, _examples(20), _examples(40), settings, 0, run_dir, on_step=on_step, stop_event=stop,
                   resume=resume)
    return result, model, weights


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_rising_validation_loss_stops_early_and_keeps_the_best_steps_weights(tmp_path, tiny_llm_dir):
    result, model, weights = _train(tiny_llm_dir, tmp_path / "run", patience=2)
    assert result.status == "finished" and result.stopped_early and result.steps < 30
    log = _log(tmp_path / "run")
    losses = {r["step"]: r["val_loss"] for r in log}
    assert result.best_step == min(losses, key=losses.get) and result.best_val_loss == losses[result.best_step]
    assert result.steps == result.best_step + 2, "two validations without improvement, then stop"
    assert _same(trainable_weights(model), weights[result.best_step]), "the model holds the best step's weights"
    assert not _same(weights[result.steps], weights[result.best_step]), "not the last step's"
    assert [r["step"] for r in log if r["best"]][-1] == result.best_step
    assert log[-1]["stopped_early"] is True and log[-1]["best_step"] == result.best_step


def test_patience_0_runs_every_step_and_still_keeps_the_best_weights(tmp_path, tiny_llm_dir):
    result, model, weights = _train(tiny_llm_dir, tmp_path / "run", patience=0, total=12)
    assert result.steps == 12 and not result.stopped_early and result.best_step < 12
    assert _same(trainable_weights(model), weights[result.best_step])


def test_a_stopped_run_resumes_with_its_best_so_far_and_stops_where_an_uninterrupted_one_does(tmp_path,
                                                                                              tiny_llm_dir):
    whole, whole_model, _ = _train(tiny_llm_dir, tmp_path / "whole", patience=3)
    assert whole.stopped_early and whole.steps >= whole.best_step + 3
    stop_at = whole.best_step + 1  # after the best step: the kept weights are not the checkpoint's current ones
    first, _, _ = _train(tiny_llm_dir, tmp_path / "parts", patience=3, stop_at=stop_at)
    assert first.status == "stopped" and first.steps == stop_at
    saved = torch.load(tmp_path / "parts" / "checkpoint.pt", weights_only=True)["log_state"]["early_stopping"]
    assert saved["best_step"] == whole.best_step and saved["bad_validations"] == 1
    second, second_model, _ = _train(tiny_llm_dir, tmp_path / "parts", patience=3, resume=True)
    assert (second.steps, second.best_step, second.best_val_loss, second.stopped_early) == (
        whole.steps, whole.best_step, whole.best_val_loss, True)
    for name, tensor in trainable_weights(second_model).items():
        assert torch.allclose(tensor, trainable_weights(whole_model)[name], atol=1e-6), name


def test_a_checkpoint_from_before_early_stopping_still_resumes(tmp_path, tiny_llm_dir):
    first, _, _ = _train(tiny_llm_dir, tmp_path / "run", patience=0, total=6, stop_at=3)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["log_state"]["early_stopping"]
    torch.save(state, checkpoint)
    model = _lora_model(tiny_llm_dir)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    from finetune.loop import linear_schedule

    assert load_checkpoint(tmp_path / "run", model, optimizer, linear_schedule(optimizer, 6))[0] == 3
    resumed, _, _ = _train(tiny_llm_dir, tmp_path / "run", patience=0, total=6, resume=True)
    assert resumed.steps == 6 and resumed.best_step is not None and resumed.best_step > 3


def test_the_tracker_counts_validations_and_round_trips_through_a_checkpoint():
    layer = torch.nn.Linear(2, 2)
    tracker = EarlyStopping(2)
    seen = []
    for step, loss in ((1, 1.0), (2, 0.8), (3, float("nan")), (4, 0.800001), (5, 0.5)):
        with torch.no_grad():
            layer.weight.fill_(step)
        seen.append((tracker.update(step, loss, layer), tracker.should_stop))
    assert seen == [(True, False), (True, False), (False, False), (False, True), (True, False)]
    again = EarlyStopping.from_state(2, tracker.state())
    assert (again.best_step, again.best_val_loss, again.bad_validations) == (5, 0.5, 0)
    assert not again.update(6, None, layer) and again.bad_validations == 0, "no validation rows: nothing counts"
    with torch.no_grad():
        layer.weight.fill_(9)
    assert again.restore(layer) and torch.all(layer.weight == 5)
    assert EarlyStopping.from_state(3, None).best_step is None and not EarlyStopping(3).restore(layer)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(-1)


@pytest.mark.parametrize("value, message", [(-1, "from 0 (off) to 1000; got -1"), ("x", "must be a int; got 'x'"),
                                            (1001, "got 1001")])
def test_a_bad_patience_is_refused_with_the_flag_named(value, message):
    with pytest.raises(InputError, match=r"--early-stopping-patience") as caught:
        FinetuneConfig(data="x.csv", early_stopping_patience=value)
    assert message in str(caught.value)


def test_the_cli_and_the_form_take_the_patience(tmp_path, capsys):
    from assistant.ui.finetune_forms import build_config
    from finetune.__main__ import build_parser, load_config, main

    args = build_parser().parse_args(["--data", f"{SAMPLES}/sentiment_en.csv", "--early-stopping-patience", "0"])
    assert load_config(args).early_stopping_patience == 0
    assert "--early-stopping-patience 0" in load_config(args).cli_command()
    assert main(["--data", f"{SAMPLES}/sentiment_en.csv", "--early-stopping-patience", "-2",
                 "--data-dir", str(tmp_path)]) == 2
    assert "--early-stopping-patience must be" in capsys.readouterr().err
    assert build_config({"early_stopping_patience": 5.0}, f"{SAMPLES}/sentiment_en.csv", tmp_path) \
        .early_stopping_patience == 5
    with pytest.raises(InputError, match="--early-stopping-patience"):
        build_config({"early_stopping_patience": "x"}, f"{SAMPLES}/sentiment_en.csv", tmp_path)


def _csv(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_the_recipe_saves_the_best_adapter_and_records_the_kept_step(tmp_path, tiny_bert_dir):
    """Head approach (tiny BERT + LoRA + classifier); the saved adapter's validation loss is the best one logged,
    not the last. The tiny BERT hovers near ln 2 at small learning rates, where best and last differ by less than
    the log's rounding on some CPUs; at 0.1 the validation loss jumps well clear of the best once it turns."""
    from peft import PeftModel

    from assistant.core.head_loading import load_head_model
    from assistant.core.loading import load_tokenizer
    from finetune.loop import validation_loss
    from finetune.models import encode_head_examples

    events = []
    config = FinetuneConfig(task="classification", data=_csv(tmp_path / "train.csv", _rows(False)),
                            eval_data=_csv(tmp_path / "val.csv", _rows(True)), base=str(tiny_bert_dir),
                            approach="head", quant="none", lora_dropout=0.0, max_steps=30, eval_every=1,
                            batch_size=6, learning_rate=1e-1, early_stopping_patience=2, labels="negative,positive",
                            eval_limit=12, data_dir=str(tmp_path / "data"), output="best")
    summary = run_new(config, lambda kind, payload: events.append((kind, payload)))
    folder = tmp_path / "data" / "adapters" / "best"
    meta = json.loads((folder / "metadata.json").read_text())
    stopping = meta["early_stopping"]
    assert stopping["stopped_early"] and stopping["patience"] == 2 and meta["steps"] == summary.steps < 30
    assert summary.best_step == stopping["best_step"] == meta["steps"] - 2 and summary.stopped_early
    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert stopping["best_val_loss"] == min(r["val_loss"] for r in log)
    assert any("Stopped early at step" in p["message"] and f"kept step {summary.best_step}" in p["message"]
               for kind, p in events if kind == "status")

    saved = PeftModel.from_pretrained(load_head_model(str(tiny_bert_dir), LABELS, False), folder)
    tokenizer = load_tokenizer(str(tiny_bert_dir))
    examples = encode_head_examples(_rows(True), tokenizer, LABELS, False, config.max_seq_len)
    loss = validation_loss(saved, examples, 6, tokenizer.pad_token_id)
    assert loss == pytest.approx(stopping["best_val_loss"], abs=2e-5)
    assert abs(loss - log[-1]["val_loss"]) > 1e-4, "the saved adapter is not the last step's"


def test_semi_supervised_round_2_must_beat_round_1_to_replace_its_weights(tmp_path, tiny_bert_dir):
    summary = run_new(FinetuneConfig(task="classification", method="semi-supervised", approach="head",
                                 base=str(tiny_bert_dir), data=f"{SAMPLES}/sentiment_semi_en.csv", epochs=1.0,
                                 batch_size=16, pseudo_label_threshold=0.5, early_stopping_patience=1,
                                 data_dir=str(tmp_path), output="semi"))
    meta = json.loads((tmp_path / "adapters" / "semi" / "metadata.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "adapters" / "semi" / "metrics.jsonl").read_text().splitlines()]
    best = min((r for r in log if r.get("val_loss") is not None), key=lambda r: r["val_loss"])
    assert meta["early_stopping"]["best_step"] == summary.best_step == best["step"]
    assert meta["round_2"]["steps"] >= 1 and summary.steps == meta["steps"] == log[-1]["step"]


def _pairs(path, flipped: bool) -> str:
    rows = [json.loads(line) for line in open(f"{SAMPLES}/preference_pairs.jsonl", encoding="utf-8")]
    if flipped:
        rows = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:12]))
    return str(path)


def test_dpo_keeps_the_best_checkpoint_and_stops_early_across_a_stop_and_resume(tmp_path, tiny_llm_dir):
    """Every step widens the margins that the swapped validation pairs count against, so step 1 has the lowest
    validation loss; with patience 3 an uninterrupted run stops at step 4. A Stop after step 2 and a Resume must
    too: the Stop's checkpoint is kept beside the best one, and the early-stopping counter travels in it."""
    from finetune.preference import TRAINER_DIR

    config = FinetuneConfig(method="preference", data=_pairs(tmp_path / "pairs.jsonl", False),
                            eval_data=_pairs(tmp_path / "flipped.jsonl", True), base=str(tiny_llm_dir),
                            max_steps=20, eval_every=1, batch_size=4, learning_rate=5e-3, max_seq_len=96,
                            early_stopping_patience=3, data_dir=str(tmp_path / "data"), output="pref-best")
    stop = threading.Event()
    first = run_new(config, lambda kind, payload: kind == "step" and stop.set(), stop_event=stop)
    assert first.status == "stopped" and first.steps == 2
    summary = run_resumed(config, first.run_id)
    folder = tmp_path / "data" / "adapters" / "pref-best"
    stopping = json.loads((folder / "metadata.json").read_text())["early_stopping"]
    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4], "one record per step, its validation loss in it"
    assert [r["best"] for r in log] == [True, False, False, False] and log[-1]["val_loss"] > log[0]["val_loss"]
    assert stopping == {"patience": 3, "best_step": 1, "best_val_loss": log[0]["val_loss"], "stopped_early": True}
    assert summary.steps == 4
    best = tmp_path / "data" / "runs" / summary.run_id / TRAINER_DIR / "checkpoint-1"
    kept, saved = load_file(best / "adapter_model.safetensors"), load_file(folder / "adapter_model.safetensors")
    assert kept.keys() == saved.keys() and all(torch.equal(kept[k], saved[k]) for k in kept)


def test_the_plot_marks_the_kept_step_and_the_estimate_says_at_most(tmp_path):
    from assistant.ui.finetune_forms import inspect_dataset
    from assistant.ui.finetune_view import kept_step, loss_frame, progress_line
    from finetune.estimate import estimate_for_config
    from tests.test_finetune_tab import snapshot

    running = snapshot(train_points=((1, 2.0), (2, 1.0), (3, 0.5)), val_points=((1, 1.5), (2, 1.2), (3, 1.4)))
    assert kept_step(running) == 2
    kept = loss_frame(running).query("series == 'kept'").to_dict("records")
    assert kept == [{"step": 2, "loss": 0.5, "series": "kept"}, {"step": 2, "loss": 2.0, "series": "kept"}]
    finished = dataclasses.replace(running, state="finished", step=3, adapter="a",
                                   summary={"best_step": 2, "stopped_early": True})
    line = progress_line(finished)
    assert "Finished · step 3/60" in line and "stopped early, kept step 2" in line
    assert kept_step(dataclasses.replace(running, val_points=())) is None
    assert math.isnan(loss_frame(dataclasses.replace(running, val_points=())).query("series == 'kept'")["loss"].iloc[0])

    view = inspect_dataset(f"{SAMPLES}/sentiment_en.csv")
    config = FinetuneConfig(data=view.path, base="minilm-l6-v2", max_steps=60, data_dir=str(tmp_path))
    assert "at most 60 steps" in estimate_for_config(config, view.rows, view.mean_chars, "cpu").summary()
    off = dataclasses.replace(config, early_stopping_patience=0)
    text = estimate_for_config(off, view.rows, view.mean_chars, "cpu").summary()
    assert "at most" not in text and "60 steps" in text

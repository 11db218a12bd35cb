"""Preference tuning: pairs validated by row, DPO and ORPO through TRL on a tiny model, base vs adapter scores."""

import json

import pytest

from assistant.core.errors import InputError
from finetune.config import FinetuneConfig
from finetune.data import load_dataset_file
from tests.recipe_runs import run_new, run_resumed

PAIRS = "finetune/samples/preference_pairs.jsonl"


def test_the_sample_pairs_are_detected_and_valid():
    loaded = load_dataset_file(PAIRS)
    assert loaded.task == "preference" and loaded.report.ok and len(loaded.rows) == 24
    assert set(loaded.rows[0]) == {"prompt", "chosen", "rejected"}


def test_bad_pairs_are_reported_by_row_number(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(12)]
    rows[2]["rejected"] = rows[2]["chosen"]          # line 3: the same answer twice
    rows[5]["chosen"] = "  "                          # line 6: empty chosen
    rows[8]["rejected"] = ""                          # line 9: empty rejected
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = load_dataset_file(path, task="preference").report
    by_row = {(p.row, p.field): p.message for p in report.errors}
    assert "same as the chosen answer" in by_row[(3, "rejected")]
    assert "empty" in by_row[(6, "chosen")] and "empty" in by_row[(9, "rejected")]
    assert not report.ok
    with pytest.raises(InputError, match="row 3|line 3"):
        run_new(FinetuneConfig(method="preference", data=str(path), base="x", data_dir=str(tmp_path)))


def test_method_preference_means_task_preference_and_checks_its_knobs():
    config = FinetuneConfig(method="preference", data=PAIRS)
    assert config.task == "preference" and config.preference_loss == "dpo"
    assert FinetuneConfig(task="preference", data=PAIRS).method == "preference"
    with pytest.raises(InputError, match="--preference-loss"):
        FinetuneConfig(method="preference", data=PAIRS, preference_loss="ppo")
    with pytest.raises(InputError, match="--beta"):
        FinetuneConfig(method="preference", data=PAIRS, beta=0)


@pytest.mark.parametrize("loss", ["dpo", "orpo"])
def test_preference_run_saves_an_adapter_with_base_vs_adapter_scores(tmp_path, tiny_llm_dir, loss):
    events = []
    summary = run_new(FinetuneConfig(method="preference", preference_loss=loss, data=PAIRS, base=str(tiny_llm_dir),
                                 max_steps=3, batch_size=4, learning_rate=5e-3, max_seq_len=96, validation_split=0.25,
                                 data_dir=str(tmp_path), output=f"pref-{loss}"),
                  on_event=lambda kind, payload: events.append((kind, payload)))
    assert summary.status == "finished" and summary.steps == 3
    steps = [p for k, p in events if k == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3] and all(s["loss"] > 0 for s in steps)
    meta = json.loads((tmp_path / "adapters" / f"pref-{loss}" / "metadata.json").read_text())
    assert meta["task"] == meta["method"] == "preference" and meta["hyperparameters"]["preference_loss"] == loss
    for which in ("base", "adapter"):
        scores = meta["metrics"][which]
        assert 0 <= scores["reward_accuracy"] <= 1 and isinstance(scores["margin"], float)
    # Training moved the adapter: its margins differ from the base's on the same pairs.
    assert meta["metrics"]["adapter"]["margin"] != meta["metrics"]["base"]["margin"]
    lines = (tmp_path / "adapters" / f"pref-{loss}" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["step"] == 3


def test_a_stopped_preference_run_keeps_a_checkpoint_and_resumes_to_the_end(tmp_path, tiny_llm_dir):
    import threading

    stop = threading.Event()
    values = dict(method="preference", data=PAIRS, base=str(tiny_llm_dir), max_steps=4, batch_size=4,
                  max_seq_len=96, save_every=100, data_dir=str(tmp_path), output="pref-resumed")

    def stop_after_first_step(kind, payload):
        if kind == "step":
            stop.set()

    first = run_new(FinetuneConfig(**values), on_event=stop_after_first_step, stop_event=stop)
    assert first.status == "stopped" and 1 <= first.steps < 4
    assert not (tmp_path / "adapters" / "pref-resumed").exists()
    steps = []
    second = run_resumed(FinetuneConfig(**values), first.run_id,
                         on_event=lambda k, p: steps.append(p["step"]) if k == "step" else None)
    assert second.status == "finished" and second.steps == 4 and steps[0] == first.steps + 1
    lines = (tmp_path / "adapters" / "pref-resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4][: len(lines)] and len(lines) == 4

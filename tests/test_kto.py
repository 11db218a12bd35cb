"""KTO (``--preference-loss kto``): unpaired prompt / completion / label files are read and checked, a tiny run
trains, saves and evaluates base vs adapter, DPO refuses unpaired rows. Run ``pytest tests/test_kto.py -q``."""

from __future__ import annotations

import json

import pytest

from assistant.core.errors import InputError
from finetune.config import FinetuneConfig
from finetune.data import load_dataset_file
from finetune.kto import eval_pairs, kto_rows
from tests.recipe_runs import run_new

PAIRS = "finetune/samples/preference_pairs.jsonl"


def _unpaired(path, rows=None):
    pairs = [json.loads(line) for line in open(PAIRS, encoding="utf-8")]
    rows = rows or kto_rows(pairs, seed=1)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_unpaired_file_is_read_as_preference_rows_with_boolean_labels(tmp_path):
    path = tmp_path / "rated.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "completion": f"answer {i}", "label": label}) + "\n"
                            for i, label in enumerate(["up", "down", 1, 0, "true", "False", "👍", "bad", True, "no"])))
    loaded = load_dataset_file(path)
    assert loaded.task == "preference" and loaded.report.ok, loaded.report.summary()
    assert [r["label"] for r in loaded.rows] == [True, False] * 5
    assert set(loaded.rows[0]) == {"prompt", "completion", "label"}


def test_an_unknown_label_names_the_row(tmp_path):
    path = tmp_path / "rated.jsonl"
    rows = [{"prompt": f"q{i}", "completion": f"a{i}", "label": "up"} for i in range(11)]
    rows[4]["label"] = "maybe"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = load_dataset_file(path, task="preference").report
    assert not report.ok
    assert any(p.row == 5 and "write true" in p.message for p in report.problems)


def test_pairs_split_into_one_good_and_one_bad_row_and_evaluation_pairs_by_prompt():
    rows = kto_rows([{"prompt": "p", "chosen": "good", "rejected": "bad"}, {"prompt": "q", "completion": "x",
                                                                          "label": False}])
    assert sorted((r["completion"], r["label"]) for r in rows) == [("bad", False), ("good", True), ("x", False)]
    pairs, formed = eval_pairs(rows)
    assert formed == "same prompt" and len(pairs) == 1 and rows[pairs[0][0]]["completion"] == "good"


def test_dpo_refuses_unpaired_rows_and_kto_needs_both_sides(tmp_path):
    data = _unpaired(tmp_path / "rated.jsonl")
    with pytest.raises(InputError, match="--preference-loss kto"):
        run_new(FinetuneConfig(method="preference", data=str(data), base="x", data_dir=str(tmp_path)))
    only_good = _unpaired(tmp_path / "good.jsonl", [{"prompt": f"q{i}", "completion": f"a{i}", "label": True}
                                                    for i in range(12)])
    with pytest.raises(InputError, match="no bad"):
        run_new(FinetuneConfig(method="preference", preference_loss="kto", data=str(only_good), base="x",
                           data_dir=str(tmp_path)))


def test_a_tiny_kto_run_trains_saves_and_evaluates(tmp_path, tiny_llm_dir):
    data = _unpaired(tmp_path / "rated.jsonl")
    events = []
    summary = run_new(FinetuneConfig(method="preference", preference_loss="kto", data=str(data), base=str(tiny_llm_dir),
                                 max_steps=3, batch_size=4, learning_rate=5e-3, max_seq_len=96, validation_split=0.25,
                                 data_dir=str(tmp_path), output="kto-tiny"),
                  on_event=lambda kind, payload: events.append((kind, payload)))
    assert summary.status == "finished" and summary.steps == 3
    assert [p["step"] for k, p in events if k == "step"] == [1, 2, 3]
    folder = tmp_path / "adapters" / "kto-tiny"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["hyperparameters"]["preference_loss"] == "kto" and (folder / "adapter_model.safetensors").is_file()
    base, adapter = meta["metrics"]["base"], meta["metrics"]["adapter"]
    assert base["pairs"] == adapter["pairs"] > 0 and 0 <= adapter["reward_accuracy"] <= 1
    assert adapter["margin"] != base["margin"]  # training moved the adapter


def test_the_tab_refuses_dpo_on_an_unpaired_upload_before_queueing(tmp_path):
    from assistant.ui.finetune_forms import inspect_dataset, start_training
    from finetune.jobs import JobManager

    view = inspect_dataset(_unpaired(tmp_path / "rated.jsonl"))
    assert view.ok and view.task == "preference"
    jobs = JobManager(tmp_path / "data")
    try:
        with pytest.raises(InputError, match="pick the preference loss kto"):
            start_training(jobs, view, {"task": "preference", "method": "preference", "preference_loss": "dpo"}, "me")
    finally:
        jobs.close()
    assert not (tmp_path / "data" / "datasets").exists()  # refused before the data was copied for a job

"""The Fine-tune tab's and the adapters panel's plain functions: dataset -> report, mapping, start refusals,
rendering of a job. No server, no model.

    pytest tests/test_finetune_tab.py -q
"""

import dataclasses
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from assistant.ui.adapters_panel import adapter_rows, delete_adapter, key_metric, rename_adapter
from assistant.ui.finetune_forms import (build_config, check_ready, estimate_markdown, inspect_dataset, preview_command,
                                         role_slots, sample_files, start_training, training_file)
from assistant.ui.finetune_view import loss_frame, metrics_markdown, progress_line
from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from finetune.data import load_dataset_file
from finetune.tasks import data_task, task_and_method, task_for_method
from finetune.jobs import JobManager, JobSnapshot
from tests.adapter_files import publish

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples"
FORM = {"task": "classification", "method": "supervised", "base": "smollm2-135m-instruct", "approach": "auto",
        "max_steps": 3.0, "batch_size": 4.0, "learning_rate": 2e-4, "output": "", "labels": ""}


@pytest.fixture
def jobs(tmp_path):
    manager = JobManager(tmp_path / "data")
    yield manager
    manager.close()


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_sample_loads_with_its_report_preview_and_detected_columns():
    assert "sentiment_en.csv" in sample_files() and "README.md" not in sample_files()
    view = inspect_dataset(SAMPLES / "sentiment_en.csv")
    assert view.ok and view.task == "classification" and view.rows == 120 and view.mean_chars > 10
    assert view.roles == view.auto_roles == {"text": "text", "label": "label"} and not view.custom_mapping
    assert "| Status | OK |" in view.markdown and "| positive | 60 | 50.0% |" in view.markdown
    assert view.preview["headers"] == ["text", "label"] and len(view.preview["data"]) == 20
    assert "120 usable rows" in view.summary and "OK" in view.summary
    semi = inspect_dataset(SAMPLES / "sentiment_semi_en.csv")
    assert semi.task == "semi_supervised" and task_and_method(semi.task) == ("classification", "semi-supervised")
    assert data_task("classification", "semi-supervised") == "semi_supervised"
    assert data_task("classification", "unsupervised") == "unsupervised" == task_and_method("unsupervised")[0]
    assert task_and_method("preference") == ("preference", "preference") == (data_task("ner", "preference"), "preference")
    assert task_for_method("ner", "semi-supervised") == "classification" and task_for_method("ner", "supervised") == "ner"


def test_every_problem_is_reported_with_its_row_and_start_is_refused(tmp_path, jobs):
    bad = write_csv(tmp_path / "bad.csv", ["text,label", "great movie,positive", "awful food,negative", ",positive",
                                           "lovely staff,positive", "rude waiter,"]
                    + [f"review {i},{'positive' if i % 2 else 'negative'}" for i in range(10)])
    view = inspect_dataset(bad)
    assert not view.ok and "2 errors" in view.summary
    assert "| line 4 | text | error | is empty |" in view.markdown
    assert "| line 6 | label | error | label is empty" in view.markdown
    with pytest.raises(InputError, match="bad.csv cannot be trained on"):
        start_training(jobs, view, FORM, owner="alice")
    with pytest.raises(InputError, match="Upload a dataset or pick a sample first"):
        start_training(jobs, None, FORM, owner="alice")
    assert jobs.jobs_for("alice") == [] and not (tmp_path / "data" / "datasets").exists(), "nothing queued, nothing copied"


def test_correcting_the_column_mapping_revalidates_and_trains_on_the_mapped_columns(tmp_path, jobs):
    rows = [f"{i},I {'really liked' if i % 2 else 'did not like'} item number {i},{'happy' if i % 2 else 'sad'}"
            for i in range(12)]
    path = write_csv(tmp_path / "moods.csv", ["id,comment,mood", *rows])
    guessed = inspect_dataset(path)
    assert guessed.ok and guessed.task == "unsupervised", "one prose column and no known label name: raw text"

    unmapped = inspect_dataset(path, "classification")
    assert not unmapped.ok and unmapped.columns == ("id", "comment", "mood")
    assert "cannot find the columns" in unmapped.error and "label" in unmapped.error and not unmapped.markdown
    assert unmapped.roles == {"text": "comment"}, "the columns that fit are preselected; the label is left to pick"
    assert unmapped.preview["headers"] == ["id", "comment", "mood"] and len(unmapped.preview["data"]) == 12
    with pytest.raises(InputError, match="cannot find the columns"):
        check_ready(unmapped)
    assert role_slots("classification") == ["text", "label"] and len(role_slots("instruction")) == 5

    mapped = inspect_dataset(path, "classification", {"text": "comment", "label": "mood"}, unmapped.auto_roles)
    assert mapped.ok and mapped.custom_mapping and "| happy | 6 | 50.0% |" in mapped.markdown
    wrong = inspect_dataset(path, "classification", {"text": "comment", "label": "id"}, unmapped.auto_roles)
    assert wrong.ok and "class '11' has only 1 example" in wrong.markdown, "re-validated on the mapping change"

    copy = training_file(mapped, tmp_path / "data")
    assert copy.suffix == ".jsonl" and copy.parent == tmp_path / "data" / "datasets"
    reread = load_dataset_file(copy, task="classification")
    assert reread.report.ok and {r["label"] for r in reread.rows} == {"happy", "sad"} and len(reread.rows) == 12


def test_start_refuses_a_task_the_data_was_not_checked_for_and_a_head_for_translation(jobs):
    view = inspect_dataset(SAMPLES / "sentiment_en.csv")
    with pytest.raises(InputError, match="choose the task again"):
        start_training(jobs, view, {**FORM, "task": "ner"}, owner="alice")
    translation = inspect_dataset(SAMPLES / "translation_en_de.jsonl")
    with pytest.raises(InputError, match="classifier head fits classification and NER"):
        start_training(jobs, translation, {**FORM, "task": "translation", "approach": "head"}, owner="alice")
    assert jobs.jobs_for("alice") == []


def test_form_values_become_a_validated_config(tmp_path):
    config = build_config({**FORM, "lora_r": 8.0, "labels": " positive, negative ", "target_modules": ""},
                          "data.csv", tmp_path)
    assert (config.max_steps, config.batch_size, config.lora_r) == (3, 4, 8)
    assert isinstance(config.max_steps, int) and config.labels == "positive, negative"
    assert config.target_modules == "all-linear" and config.data_dir == str(tmp_path)
    with pytest.raises(InputError, match="--lora-r must be between 1 and 512"):
        build_config({**FORM, "lora_r": 0}, "data.csv", tmp_path)
    view = inspect_dataset(SAMPLES / "sentiment_en.csv")
    assert "--max-steps 3" in preview_command(view, FORM, tmp_path)
    assert preview_command(view, {**FORM, "batch_size": -1}, tmp_path).startswith("# --batch-size")
    copy = training_file(view, tmp_path)
    assert copy.read_bytes() == (SAMPLES / "sentiment_en.csv").read_bytes() and copy.suffix == ".csv"
    plan = estimate_markdown(view, FORM, tmp_path)
    assert "With base auto: minilm-l6-v2, head" in plan and "**Estimate:** ≈" in plan and "3 steps" in plan
    auto_plan = estimate_markdown(view, {**FORM, "base": "auto"}, tmp_path)
    assert "**Base:** auto → minilm-l6-v2 (head)" in auto_plan and "**Estimate:** ≈" in auto_plan


def snapshot(**overrides) -> JobSnapshot:
    values = dict(job_id="job-1", run_id="classification-1", owner="alice", config=FinetuneConfig(data="x.csv"),
                  state="running", queue_position=None, step=12, total_steps=60, elapsed=41.2, eta=130.4,
                  train_points=((1, 2.5), (2, 2.0)), val_points=((2, 2.2),), log=("12:00:00 Started.",),
                  metrics=None, summary=None, error=None, adapter=None, stop_requested=False, resumable=False,
                  created="2026-01-01T00:00:00", version=3)
    values.update(overrides)
    return JobSnapshot(**values)


def test_progress_line_shows_steps_elapsed_eta_queue_and_ownership():
    assert "step 12/60 · 00:41 elapsed · ETA 02:10" in progress_line(snapshot(), viewer="alice")
    assert "view only" not in progress_line(snapshot(), viewer="alice")
    assert "view only" in progress_line(snapshot(), viewer="bob")
    assert "2 jobs ahead of you" in progress_line(snapshot(state="queued", queue_position=2), "alice")
    assert "1 job ahead of you" in progress_line(snapshot(state="queued", queue_position=1), "alice")
    assert "Failed · data.csv has 2 errors" in progress_line(snapshot(state="failed", error="data.csv has 2 errors"))
    finished = progress_line(snapshot(state="finished", step=60, adapter="sentiment-v1"), "alice")
    assert "Finished · step 60/60" in finished and "sentiment-v1" in finished
    assert "press Resume" in progress_line(snapshot(state="stopped", resumable=True), "alice")
    frame = loss_frame(snapshot())
    assert frame.to_dict("records") == [{"step": 1, "loss": 2.5, "series": "train"},
                                        {"step": 2, "loss": 2.0, "series": "train"},
                                        {"step": 2, "loss": 2.2, "series": "validation"},
                                        {"step": 2, "loss": 2.0, "series": "kept"},  # the kept step: a vertical
                                        {"step": 2, "loss": 2.5, "series": "kept"}]  # line across the losses
    empty = loss_frame(None)  # no job: nothing drawable, but every series named (the plot draws them later)
    assert list(empty.columns) == ["step", "loss", "series"] and empty["loss"].isna().all()
    assert sorted(empty["series"]) == ["kept", "train", "validation"]


def test_metrics_table_puts_base_and_adapter_side_by_side():
    confusion = {"negative": {"negative": 5, "positive": 1}, "positive": {"negative": 0, "positive": 6}}
    text = metrics_markdown({"base": {"accuracy": 0.5, "macro_f1": 0.33, "confusion": confusion},
                             "adapter": {"accuracy": 0.9, "macro_f1": 0.9, "confusion": confusion}})
    assert "| accuracy | 0.5000 | 0.9000 | +0.4000 ✅ |" in text
    assert "**Adapter: confusion matrix**" in text and "| negative | 5 | 1 |" in text
    ner = metrics_markdown({"base": {"f1": 0.1, "PER_f1": 0.2, "PER_support": 4.0},
                            "adapter": {"f1": 0.5, "PER_f1": 0.7, "PER_support": 4.0}})
    assert "| PER f1 | 0.2000 | 0.7000 |" in ner and "support" not in ner
    perplexity = metrics_markdown({"base": {"loss": 3.0, "perplexity": 20.1}, "adapter": {"loss": 2.0,
                                                                                         "perplexity": 7.4}})
    assert "| perplexity | 20.10 | 7.4000 | -12.7000 ✅ |" in perplexity
    assert metrics_markdown(None) == "" and metrics_markdown({"base": {}, "adapter": {}}) == ""


def test_adapter_list_shows_key_metrics_and_broken_adapters_with_the_reason(tmp_path):
    store = AdapterStore(tmp_path / "adapters")
    publish(store, "sentiment-v1", task="classification")
    (tmp_path / "adapters" / "half-copied").mkdir()
    rows = {row[0]: row for row in adapter_rows(store)}
    assert rows["sentiment-v1"][4] == "accuracy 0.900 (base 0.500)" and rows["sentiment-v1"][5] == "ok"
    assert rows["half-copied"][5].startswith("broken: ") and "adapter_model.safetensors is missing" in rows[
        "half-copied"][5]
    info = store.get("sentiment-v1")
    assert key_metric(dataclasses.replace(info, metrics={"base": {}, "adapter": {"bleu": 12.5}})) == "bleu 12.500"

    assert rename_adapter(store, "sentiment-v1", "sentiment-v2") == "sentiment-v2"
    with pytest.raises(InputError, match="Tick the confirmation box"):
        delete_adapter(store, "sentiment-v2", confirmed=False)
    with pytest.raises(InputError, match="Pick the adapter"):
        delete_adapter(store, None, confirmed=True)
    delete_adapter(store, "sentiment-v2", confirmed=True)
    assert [row[0] for row in adapter_rows(store)] == ["half-copied"]

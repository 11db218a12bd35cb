"""Datasets built from ratings: each format round-trips through the Fine-tune tab's reader, the method is picked
from the ratings with its reason, too few ratings say how many more are needed, and the Feedback view filters
and downloads. Run ``pytest tests/test_feedback_dataset.py -q``."""

from __future__ import annotations

import json

import pytest

from assistant.core.errors import InputError
from assistant.core.user_messages import translated
from assistant.feedback.dataset import MIN_ROWS, plan_training, write_dataset
from assistant.ui.feedback_view import download_dataset, filter_ratings, plan_markdown, table_rows, train_on_feedback
from assistant.ui.finetune_forms import inspect_dataset
from finetune.data import load_dataset_file


def rating(i: int, kind: str, language: str = "en", adapter=None) -> dict:
    """kind: up, down, or fixed (down with a better answer)."""
    question = f"问题 {i}：LoRA 是什么？" if language == "zh" else f"Question {i}: what is LoRA?"
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    if i % 3 == 0:  # some come after earlier turns
        conversation[1:1] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    return {"id": f"chat-{i}", "rating": "up" if kind == "up" else "down", "conversation": conversation,
            "reply": f"Reply {i}, long and rambling.", "better_answer": f"Better answer {i}." if kind == "fixed" else None,
            "model": "tiny", "adapter": adapter, "language": language, "time": f"2026-12-05T10:{i:02d}:00+00:00",
            "session": "session:a"}


MIXED = [rating(i, ["up", "down", "fixed"][i % 3], "zh" if i % 2 else "en") for i in range(15)]


@pytest.mark.parametrize("method, task, columns", [("kto", "preference", {"prompt", "completion", "label"}),
                                                   ("dpo", "preference", {"prompt", "chosen", "rejected"}),
                                                   ("sft", "instruction", {"messages"})])
def test_each_dataset_round_trips_through_the_finetune_reader(tmp_path, method, task, columns):
    ratings = [rating(i, "fixed") for i in range(12)] if method == "dpo" else MIXED
    plan = plan_training(ratings, method)
    path = write_dataset(plan.rows, tmp_path / f"{method}.jsonl")
    loaded = load_dataset_file(path)  # the task guessed from the columns, as the tab does on upload
    assert loaded.task == task and loaded.report.ok, loaded.report.summary()
    assert set(json.loads(path.read_text().splitlines()[0])) == columns
    assert loaded.rows == plan.rows  # nothing changed on the way through
    view = inspect_dataset(path)
    assert view.ok and view.rows == len(plan.rows)


def test_the_rows_carry_the_conversation_and_the_better_answer():
    plan = plan_training(MIXED, "kto")
    fixed = MIXED[2]
    assert {"prompt": "Question 2: what is LoRA?", "completion": "Better answer 2.", "label": True} in plan.rows
    assert {"prompt": "Question 2: what is LoRA?", "completion": fixed["reply"], "label": False} in plan.rows
    after_turns = next(r for r in plan.rows if r["completion"] == MIXED[3]["reply"])
    assert after_turns["prompt"].startswith("User: Hi\n\nAssistant: Hello!\n\nUser: ") and after_turns["label"]
    sft = plan_training(MIXED, "sft").rows
    assert sft[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in sft[1]["messages"]][-1] == "Better answer 2."


def test_auto_picks_the_method_from_the_ratings_and_says_why():
    assert plan_training(MIXED).method == "kto"
    only_fixed = plan_training([rating(i, "fixed") for i in range(12)])
    assert only_fixed.method == "dpo" and "every thumbs-down has a better answer" in only_fixed.reason
    only_up = plan_training([rating(i, "up") for i in range(12)])
    assert only_up.method == "sft" and "nothing is rated down" in only_up.reason
    assert "12 examples" in only_up.reason and only_up.form == {"task": "instruction", "method": "supervised"}


def test_too_few_ratings_say_how_many_more_are_needed():
    with pytest.raises(InputError, match=f"needs at least {MIN_ROWS} rated answers; there are 4 .* Rate 6 more") as raised:
        plan_training([rating(i, ["up", "down"][i % 2]) for i in range(4)])
    assert translated(raised.value, "zh") == "用反馈训练（KTO）至少需要 10 条样本，目前只有 4 条：请再评价 6 条。"
    with pytest.raises(InputError, match="thumbs-down with a better answer; there are 2 .* Rate 8 more"):
        plan_training([rating(0, "fixed"), rating(1, "fixed"), rating(2, "down")], "dpo")
    with pytest.raises(InputError, match="none is rated up"):
        plan_training([rating(i, "down") for i in range(12)], "kto")
    assert "**Not yet:**" in plan_markdown(MIXED[:3], "auto", "smollm2-135m-instruct", "/tmp")


def test_the_view_filters_and_downloads(tmp_path):
    ratings = MIXED + [rating(20, "up", adapter="kind-v1")]
    assert [r["id"] for r in filter_ratings(ratings, produced="tiny + kind-v1")] == ["chat-20"]
    assert all(r["better_answer"] for r in filter_ratings(ratings, rating="down", corrected="yes"))
    assert {r["language"] for r in filter_ratings(ratings, language="zh")} == {"zh"}
    assert filter_ratings(ratings)[0]["id"] == "chat-20"  # newest first
    assert table_rows(filter_ratings(ratings, corrected="yes"))[0][3].startswith("Better answer")
    path = download_dataset(ratings, "dpo")
    assert load_dataset_file(path).task == "preference" and len(path.read_text().splitlines()) == 5
    with pytest.raises(InputError, match="nothing to download as DPO"):
        download_dataset([rating(0, "up")], "dpo")


def test_the_plan_names_the_method_and_the_estimate(tmp_path, tiny_llm_dir):
    text = plan_markdown(MIXED, "auto", str(tiny_llm_dir), tmp_path)
    assert text.startswith("**Will run:** KTO on 20 examples") and "Estimate" in text


def test_train_on_feedback_runs_a_normal_job_and_scores_the_held_out_pairs(tmp_path, tiny_llm_dir):
    from assistant.core.machine_settings import MachineSettings
    from finetune.jobs import JobManager
    from finetune.recipe import run
    from tests.test_jobs import wait_until_done

    def in_this_process(config, run_dir, resume, on_event, stop_event):  # the recipe itself, without the child's start
        return run(config, run_dir, MachineSettings.from_env(), resume, on_event, stop_event)

    jobs = JobManager(tmp_path / "data", runner=in_this_process)
    try:
        job_id, plan = train_on_feedback(jobs, MIXED, "auto", str(tiny_llm_dir), owner="test",
                                         settings={"max_steps": 2, "max_seq_len": 96})
        snapshot = wait_until_done(jobs, job_id)
    finally:
        jobs.close()
    assert snapshot.state == "finished", snapshot.error
    assert plan.method == "kto" and list((tmp_path / "data" / "feedback" / "datasets").glob("feedback-kto-*.jsonl"))
    meta = json.loads((tmp_path / "data" / "adapters" / snapshot.adapter / "metadata.json").read_text())
    assert meta["hyperparameters"]["preference_loss"] == "kto" and meta["validation_rows"] == 4
    for which in ("base", "adapter"):  # the held-out good / bad pairs, scored by both
        assert 0 <= meta["metrics"][which]["reward_accuracy"] <= 1 and meta["metrics"][which]["pairs"] > 0

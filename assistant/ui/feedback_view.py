"""The Feedback view's logic without Gradio: filter and list ratings, download them as a dataset, train on them.

    found = store.read()
    rows = table_rows(filter_ratings(found.ratings, rating="down", corrected="yes"))
    path = download_dataset(found.ratings, "kto")                  # prompt / completion / label JSON Lines
    text = plan_markdown(found.ratings, "auto", base, data_dir)    # which method it will run, why, the estimate
    job_id, plan = train_on_feedback(jobs, found.ratings, "auto", base, owner="browser-token")

Tests: ``pytest tests/test_feedback_dataset.py -q``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from assistant.core.errors import InputError
from assistant.feedback.dataset import BUILDERS, Plan, counts, plan_training, write_dataset
from assistant.ui.downloads import download_path
from assistant.ui.finetune_forms import estimate_markdown, inspect_dataset, start_training
from finetune.tasks import data_task

COLUMNS = ["id", "time", "rating", "better answer", "language", "model + adapter", "question", "reply"]
ALL = "all"
PREVIEW_CHARS = 120
TRAINING = {"epochs": 3.0, "batch_size": 4, "max_seq_len": 512, "validation_split": 0.2, "learning_rate": 2e-4}
"""Settings of a "Train on feedback" run: a few passes over little data; early stopping keeps the best step."""


def produced_by(rating: dict) -> str:
    return rating["model"] + (f" + {rating['adapter']}" if rating.get("adapter") else "")


def _short(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def filter_choices(ratings: list[dict]) -> tuple[list[str], list[str]]:
    """(model + adapter choices, language choices), each starting with ``all``."""
    languages = sorted({r.get("language") or "?" for r in ratings})
    return [ALL, *sorted({produced_by(r) for r in ratings})], [ALL, *languages]


def filter_ratings(ratings: list[dict], produced: str = ALL, rating: str = ALL, corrected: str = ALL,
                   language: str = ALL) -> list[dict]:
    """The ratings that match every filter (``all`` matches anything); newest first."""
    kept = []
    for r in reversed(ratings):
        if produced not in (ALL, None, "") and produced_by(r) != produced:
            continue
        if rating not in (ALL, None, "") and r["rating"] != rating:
            continue
        if corrected not in (ALL, None, "") and bool(r.get("better_answer")) != (corrected == "yes"):
            continue
        if language not in (ALL, None, "") and (r.get("language") or "?") != language:
            continue
        kept.append(r)
    return kept


def table_rows(ratings: list[dict]) -> list[list[str]]:
    rows = []
    for r in ratings:
        question = next((m["content"] for m in reversed(r["conversation"]) if m.get("role") == "user"), "")
        rows.append([r["id"], str(r.get("time", "")).replace("T", " ")[:19], "👍 up" if r["rating"] == "up" else
                     "👎 down", _short(r.get("better_answer") or ""), r.get("language") or "?", produced_by(r),
                     _short(question), _short(r["reply"])])
    return rows


def summary_markdown(all_ratings: list[dict], shown: list[dict], skipped: list[str]) -> str:
    n = counts(all_ratings)
    lines = [f"**{len(all_ratings)} ratings**: {n['up']} up, {n['down']} down ({n['corrected']} with a better "
             f"answer); {len(shown)} shown."]
    if skipped:
        listed = "\n".join(f"- {line}" for line in skipped[:10])
        more = f"\n- … and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        lines.append(f"⚠️ The feedback file has lines that are not ratings; they are skipped (and kept in the "
                     f"file, so a fix by hand brings them back):\n{listed}{more}")
    return "\n\n".join(lines)


def download_dataset(ratings: list[dict], method: str) -> Path:
    """The ratings as a ``method`` (kto, dpo or sft) dataset file for the Fine-tune tab."""
    if method not in BUILDERS:
        raise InputError(f"Pick the dataset to download: one of {', '.join(BUILDERS)}; got {str(method)[:20]!r}.")
    rows = BUILDERS[method](ratings)
    if not rows:
        what = {"kto": "no ratings yet", "dpo": "no thumbs-down with a better answer yet",
                "sft": "no liked answers or better answers yet"}[method]
        raise InputError(f"There is nothing to download as {method.upper()}: {what}. Rate replies in Chat first.")
    return write_dataset(rows, download_path(f"feedback-{method}.jsonl"))


def _dataset_view(plan: Plan, folder: Path):
    path = write_dataset(plan.rows, folder / f"feedback-{plan.method}-{datetime.now():%Y%m%d-%H%M%S}.jsonl")
    form = plan.form
    return path, inspect_dataset(path, data_task(form["task"], form["method"]))


def plan_markdown(ratings: list[dict], method: str, base: str, data_dir: str | Path) -> str:
    """What "Train on feedback" will run on the ratings now, why, and the estimate (or what is missing)."""
    try:
        plan = plan_training(ratings, method)
    except InputError as exc:
        return f"**Not yet:** {exc}"
    path, view = _dataset_view(plan, Path(download_path("plan").parent))
    estimate = estimate_markdown(view, {**plan.form, **TRAINING, "base": base}, data_dir)
    return f"**Will run:** {plan.reason}\n\n{estimate}"


def train_on_feedback(jobs, ratings: list[dict], method: str, base: str, owner: str,
                      settings: dict | None = None) -> tuple[str, Plan]:
    """Build the dataset from ``ratings`` (kept in DATA_DIR/feedback/datasets) and start a normal job on it;
    ``settings``: form values over ``TRAINING``."""
    plan = plan_training(ratings, method)
    path, view = _dataset_view(plan, Path(jobs.data_dir) / "feedback" / "datasets")
    output = f"feedback-{plan.method}-{datetime.now():%m%d-%H%M%S}"
    job_id = start_training(jobs, view, {**plan.form, **TRAINING, "base": base, "output": output,
                                               **(settings or {})}, owner=owner)
    return job_id, plan

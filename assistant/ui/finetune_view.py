"""How the Fine-tune tab shows a job: progress line, loss curve, log, base-vs-adapter metrics. Pure functions
of a ``JobSnapshot``, no Gradio. Tests: ``pytest tests/test_finetune_tab.py -q``.
"""

from __future__ import annotations

import math

import pandas as pd

from finetune.estimate import duration
from finetune.jobs import JobSnapshot

LOSS_COLUMNS = ["step", "loss", "series"]
SERIES = ("train", "validation", "kept")
"""The plot's series: training loss, validation loss and a vertical line at the step whose weights the adapter
keeps (the lowest validation loss so far; the recipe's own answer once the job has finished)."""
LOG_LINES_SHOWN = 40
# Metrics shown first, per task, and whether lower is better.
MAIN_METRICS = ("accuracy", "macro_f1", "precision", "recall", "f1", "bleu", "chrf", "exact_match", "token_f1",
                "hit_rate", "loss", "perplexity")
LOWER_IS_BETTER = ("loss", "perplexity")


def progress_line(snapshot: JobSnapshot | None, viewer: str | None = None) -> str:
    """e.g. ``step 12/60 · 00:41 elapsed · ETA 02:10`` with the job's state in front."""
    if snapshot is None:
        return "No training job yet: load a dataset, check the report and press Start."
    s = snapshot
    steps = f"step {s.step}/{s.total_steps}" if s.total_steps else "preparing"
    if s.state == "queued":
        ahead = s.queue_position or 0
        text = (f"⏳ Queued · {ahead} job{'s' if ahead != 1 else ''} ahead of you" if ahead
                else "⏳ Queued · starting now")
    elif s.state == "running":
        eta = f" · ETA {duration(s.eta)}" if s.eta is not None else ""
        stopping = " · stopping after this step" if s.stop_requested else ""
        text = f"🏃 Running · {steps} · {duration(s.elapsed)} elapsed{eta}{stopping}"
    elif s.state == "stopped":
        resume = " · press Resume to continue" if s.resumable else ""
        text = f"⏸ Stopped · {steps} · {duration(s.elapsed)} elapsed{resume}"
    elif s.state == "finished":
        text = f"✅ Finished · {steps} · {duration(s.elapsed)} · adapter **{s.adapter}**{_kept_note(s)}"
    else:
        text = f"❌ Failed · {s.error}"
    watching = " (started in another browser session: view only)" if s.owner not in (None, viewer) else ""
    return f"{text}\n\nJob `{s.job_id}` · run `{s.run_id}`{watching}"


def kept_step(snapshot: JobSnapshot | None) -> int | None:
    """The step whose weights the adapter keeps: the finished run's own ``best_step``, else (while it runs) the
    first lowest validation loss, which is the one the training loop keeps (it compares the logged values)."""
    if snapshot is None:
        return None
    if snapshot.summary and snapshot.summary.get("best_step") is not None:
        return int(snapshot.summary["best_step"])
    finite = [point for point in snapshot.val_points if math.isfinite(point[1])]
    return min(finite, key=lambda point: point[1])[0] if finite else None


def loss_frame(snapshot: JobSnapshot | None) -> pd.DataFrame:
    """Long-format loss points for ``gr.LinePlot(x="step", y="loss", color="series")``, with the kept step as a
    vertical "kept" line across the losses drawn.

    A series without points yet gets one point with no loss (not drawn): Gradio 6's LinePlot fixes its
    series from the values it has seen, and one that went from empty to filled drew no lines at all."""
    rows = [(step, loss, "train") for step, loss in (snapshot.train_points if snapshot else ())]
    rows += [(step, loss, "validation") for step, loss in (snapshot.val_points if snapshot else ())]
    kept = kept_step(snapshot)
    losses = [loss for _, loss, _ in rows if math.isfinite(loss)]
    if kept is not None and losses:
        rows += [(kept, min(losses), "kept"), (kept, max(losses), "kept")]
    rows += [(0, float("nan"), series) for series in SERIES if series not in {r[2] for r in rows}]
    return pd.DataFrame(rows, columns=LOSS_COLUMNS).astype({"step": int, "loss": float, "series": str})


def _kept_note(snapshot: JobSnapshot) -> str:
    """`` · stopped early, kept step 24`` (or `` · kept step 24``) from the finished run's summary."""
    summary = snapshot.summary or {}
    if summary.get("best_step") is None:
        return ""
    return f" · {'stopped early, ' if summary.get('stopped_early') else ''}kept step {summary['best_step']}"


def log_text(snapshot: JobSnapshot | None) -> str:
    return "" if snapshot is None else "\n".join(snapshot.log[-LOG_LINES_SHOWN:])


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def _ordered_keys(base: dict, adapter: dict) -> list[str]:
    keys = [k for k in dict.fromkeys([*base, *adapter]) if isinstance(adapter.get(k, base.get(k)), (int, float))]
    main = [k for k in MAIN_METRICS if k in keys]
    per_type = sorted(k for k in keys if k.endswith("_f1") and k not in main)  # NER: F1 of each entity type
    rest = [k for k in keys if k not in main and k not in per_type and not k.endswith(("_precision", "_recall"))
            and not k.endswith("_support")]
    return main + per_type + rest


def metrics_markdown(metrics: dict | None) -> str:
    """Base vs adapter side by side (+ change), and the confusion matrices for classification."""
    if not metrics or not (metrics.get("base") or metrics.get("adapter")):
        return ""
    base, adapter = metrics.get("base") or {}, metrics.get("adapter") or {}
    lines = ["**Base model vs adapter** (validation split)", "", "| Metric | Base | Adapter | Change |",
             "|---|---:|---:|---:|"]
    for key in _ordered_keys(base, adapter):
        b, a = base.get(key), adapter.get(key)
        change = "–"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            better = (a < b) if key in LOWER_IS_BETTER else (a > b)
            change = f"{a - b:+.4f}" + (" ✅" if better else "")
        lines.append(f"| {key.replace('_', ' ')} | {_number(b)} | {_number(a)} | {change} |")
    for which, values in (("Base", base), ("Adapter", adapter)):
        confusion = values.get("confusion")
        if isinstance(confusion, dict) and confusion:
            labels = list(confusion)
            lines += ["", f"**{which}: confusion matrix** (rows: true label, columns: predicted)", "",
                      "| true \\ predicted | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
            lines += [f"| {gold} | " + " | ".join(str(confusion[gold].get(p, 0)) for p in labels) + " |"
                      for gold in labels]
    return "\n".join(lines)

"""The Feedback view (in the Fine-tune area): the ratings given in Chat and through the API, with filters,
delete, download as a dataset, and "Train on feedback".

    with gr.Blocks() as demo:
        build_feedback_panel(feedback.store, jobs, base=lambda: "smollm2-135m-instruct")

Built only where training is (behind the operator password when one is set), so deleting a rating and
training are locked with it. Logic: ``assistant.ui.feedback_view``. Tests: ``pytest tests/test_feedback_dataset.py
tests/test_browser_feedback.py -q``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from assistant.core.errors import InputError
from assistant.ui.feedback_view import (ALL, COLUMNS, download_dataset, filter_choices, filter_ratings, plan_markdown,
                                        summary_markdown, table_rows, train_on_feedback)
from assistant.ui.finetune_view import progress_line
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors

TRANSLATIONS = {
    "en": {"fbview.title": "### Feedback: ratings from Chat and the API", "fbview.produced": "Model + adapter",
           "fbview.rating": "Rating", "fbview.corrected": "Has a better answer", "fbview.language": "Language",
           "fbview.refresh": "Refresh", "fbview.table": "Ratings (newest first)", "fbview.pick": "Rating id",
           "fbview.confirm": "Yes, delete this rating", "fbview.delete": "Delete", "fbview.format": "Dataset",
           "fbview.download": "Download as a dataset", "fbview.file": "Dataset file", "fbview.method": "Method",
           "fbview.train": "Train on feedback"},
    "zh": {"fbview.title": "### 反馈：来自对话和 API 的评分", "fbview.produced": "模型 + 适配器", "fbview.rating": "评分",
           "fbview.corrected": "有更好的回答", "fbview.language": "语言", "fbview.refresh": "刷新",
           "fbview.table": "评分（最新在前）", "fbview.pick": "评分 id", "fbview.confirm": "确认删除这条评分",
           "fbview.delete": "删除", "fbview.format": "数据集", "fbview.download": "下载为数据集", "fbview.file": "数据集文件",
           "fbview.method": "方法", "fbview.train": "用反馈训练"},
}
DATASETS = [("KTO: prompt, completion, label", "kto"), ("DPO: prompt, chosen, rejected", "dpo"),
            ("SFT: messages", "sft")]
METHOD_CHOICES = [("auto (picked from the ratings)", "auto"), ("KTO", "kto"), ("DPO", "dpo"), ("SFT", "sft")]


@dataclass
class FeedbackPanel:
    refresh_on: Callable
    """``refresh_on(*triggers)``: list the ratings again on these events (e.g. the tab's ``.select``)."""
    finished: gr.State
    """The adapter of this session's "Train on feedback" run, set once when it has finished (else None)."""


def build_feedback_panel(store, jobs, base: Callable[[], str]) -> FeedbackPanel:
    """Lay out the view inside the current Blocks; ``base()``: the model a run trains, read when the plan is shown
    and when Train is pressed (the model picked above the tabs at that moment)."""
    first = store.read()
    models, languages = filter_choices(first.ratings)
    newest = filter_ratings(first.ratings)
    gr.Markdown(tr("fbview.title"), elem_id="fb-title")
    with gr.Row():
        produced = gr.Dropdown(models, value=ALL, label=tr("fbview.produced"), elem_id="fb-produced", scale=2)
        rating = gr.Radio([ALL, "up", "down"], value=ALL, label=tr("fbview.rating"), elem_id="fb-rating", scale=1)
        corrected = gr.Radio([ALL, "yes", "no"], value=ALL, label=tr("fbview.corrected"), elem_id="fb-corrected",
                             scale=1)
        language = gr.Dropdown(languages, value=ALL, label=tr("fbview.language"), elem_id="fb-language", scale=1)
        refresh = gr.Button(tr("fbview.refresh"), elem_id="fb-refresh", scale=1)
    summary = gr.Markdown(summary_markdown(first.ratings, first.ratings, first.skipped), elem_id="fb-summary")
    table = gr.Dataframe(value={"headers": COLUMNS, "data": table_rows(newest)}, headers=COLUMNS, interactive=False,
                         wrap=True, label=tr("fbview.table"), elem_id="fb-table")
    with gr.Row():
        pick = gr.Dropdown([r["id"] for r in newest], value=None, label=tr("fbview.pick"), elem_id="fb-pick",
                           scale=2)
        confirm = gr.Checkbox(label=tr("fbview.confirm"), value=False, elem_id="fb-confirm", scale=1)
        delete = gr.Button(tr("fbview.delete"), variant="stop", elem_id="fb-delete", scale=1)
    with gr.Row():
        dataset = gr.Radio(DATASETS, value="kto", label=tr("fbview.format"), elem_id="fb-format", scale=2)
        download = gr.Button(tr("fbview.download"), elem_id="fb-download", scale=1)
        file = gr.File(label=tr("fbview.file"), interactive=False, elem_id="fb-file", scale=2)
    with gr.Row():
        method = gr.Radio(METHOD_CHOICES, value="auto", label=tr("fbview.method"), elem_id="fb-method", scale=2)
        train = gr.Button(tr("fbview.train"), variant="primary", elem_id="fb-train", scale=1)
    plan = gr.Markdown(elem_id="fb-plan")
    job = gr.State(None)
    status = gr.Markdown(elem_id="fb-job")
    timer = gr.Timer(2.0, active=False)
    finished = gr.State(None)

    def listing(which, up_down, fixed, lang, chosen=None):
        found = store.read()
        shown_ratings = filter_ratings(found.ratings, which, up_down, fixed, lang)
        models, languages = filter_choices(found.ratings)
        ids = [r["id"] for r in shown_ratings]
        # choices only: setting the filters' values here would fire their .change, which lists again
        return (gr.update(choices=[*models, *([which] if which not in models else [])]),
                gr.update(choices=[*languages, *([lang] if lang not in languages else [])]),
                summary_markdown(found.ratings, shown_ratings, found.skipped),
                gr.update(value={"headers": COLUMNS, "data": table_rows(shown_ratings)}),
                gr.update(choices=ids, value=chosen if chosen in ids else None))

    filters = [produced, rating, corrected, language]

    listed = [produced, language, summary, table, pick]
    private = {"api_visibility": "private"}

    def on_plan(chosen_method):
        return plan_markdown(store.read().ratings, chosen_method, base(), jobs.data_dir)

    @shows_user_errors
    def on_delete(rating_id, sure, *values):
        if not rating_id:
            raise InputError("Pick the rating to delete first (its id, from the table).")
        if not sure:
            raise InputError.keyed("feedback.confirm_delete_rating")
        if not store.delete(rating_id):
            raise InputError(f"There is no rating {rating_id!r} any more: refresh the list.")
        return (*listing(*values), False)

    @shows_user_errors
    def on_download(which):
        return str(download_dataset(store.read().ratings, which))

    @shows_user_errors
    def on_train(chosen_method, request: gr.Request):
        job_id, chosen = train_on_feedback(jobs, store.read().ratings, chosen_method, base(),
                                           owner=f"feedback:{getattr(request, 'session_hash', '')}")
        return job_id, f"Started: {chosen.reason}", gr.Timer(active=True)

    def on_tick(job_id, request: gr.Request):
        snapshot = jobs.get(job_id) if job_id else None
        if snapshot is None:
            return "", gr.Timer(active=False), gr.skip()
        viewer = f"feedback:{getattr(request, 'session_hash', '')}"
        line = progress_line(snapshot, viewer)
        done = snapshot.state == "finished" and snapshot.adapter
        if done:
            line += (f"\n\nChat's *Compare side by side* is open with **{snapshot.adapter}** on the right: ask both "
                     "the same question.")
        return line, gr.Timer(active=snapshot.state in ("queued", "running")), snapshot.adapter if done else gr.skip()

    gr.on([refresh.click, *(f.change for f in filters)], listing, filters, listed, show_progress="hidden", **private)
    gr.on([refresh.click, method.change], on_plan, method, plan, show_progress="hidden", **private)
    delete.click(on_delete, [pick, confirm, *filters], [*listed, confirm], **private)
    download.click(on_download, dataset, file, **private)
    train.click(on_train, method, [job, plan, timer], **private)
    timer.tick(on_tick, job, [status, timer, finished], show_progress="hidden", **private)
    def refresh_on(*triggers) -> None:
        gr.on(list(triggers), listing, filters, listed, show_progress="hidden", **private)
        gr.on(list(triggers), on_plan, method, plan, show_progress="hidden", **private)

    return FeedbackPanel(refresh_on, finished)

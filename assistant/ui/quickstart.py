"""A first fine-tune in one click: train a sentiment classifier (or an NER tagger) on a shipped sample.

On the Fine-tune tab, each button loads a sample dataset from ``finetune/samples`` with settings that are
fast on a laptop CPU (the 4-bit MiniLM encoder + LoRA + a trained head), fills the form with them and starts
the run through the tab's job manager. The tab's own poll then shows progress, the loss curve and, at the
end, the base-vs-adapter table; the app selects the new adapter in the picker above the tabs.

    quick = build_quickstart()            # inside the tab's layout: the buttons and a status line
    quick.wire(jobs, browser, progress, form, sample, load_sample, dataset_outputs, timer)
    job_id = start_quickstart(jobs, "sentiment", owner="browser-token")   # the same, without Gradio

Both runs take well under a minute on a 2-core CPU and move the held-out metric far above the untrained
head (times and metrics: bench/README.md, "One-click fine-tune and the automatic base").
Tests: ``pytest tests/test_quickstart.py tests/test_browser_quickstart.py -q``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import gradio as gr

from assistant.ui.finetune_forms import DEFAULTS, FORM_FIELDS, SAMPLES_DIR, inspect_dataset, start_training
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors
from finetune.jobs import JobManager, JobSnapshot


@dataclass(frozen=True)
class Quickstart:
    """One ready-made run: a sample file and the form values that train it fast and well on a CPU."""

    sample: str
    settings: dict = field(default_factory=dict)


COMMON = {"method": "supervised", "base": "minilm-l6-v2", "approach": "head", "quant": "nf4", "epochs": 1.0,
          "validation_split": 0.25, "eval_limit": 200, "seed": 42, "lora_r": 16, "lora_alpha": 32}
QUICKSTARTS = {
    "sentiment": Quickstart("sentiment_en.csv", {**COMMON, "task": "classification", "learning_rate": 1e-3,
                                                 "batch_size": 16, "max_steps": 60, "max_seq_len": 96,
                                                 "output": "try-sentiment"}),
    "ner": Quickstart("ner_en.conll", {**COMMON, "task": "ner", "learning_rate": 2e-3, "batch_size": 8,
                                       "max_steps": 100, "max_seq_len": 128, "output": "try-ner"}),
}

IDLE = ("Each button loads a sample dataset from `finetune/samples`, fills the form below with fast settings "
        "(MiniLM encoder, 4-bit, LoRA + head) and starts training. When it ends, the new adapter is selected "
        "above the tabs and the base-vs-adapter table appears at the bottom of this tab.")
TRANSLATIONS = {
    "en": {"quickstart.idle": IDLE,
           "quickstart.title": "### New here? Train your first adapter in one click",
           "quickstart.sentiment": "Try it: train a sentiment classifier (about a minute on a laptop CPU)",
           "quickstart.ner": "Try it: train an NER tagger (about a minute on a laptop CPU)"},
    "zh": {"quickstart.title": "### 第一次使用？一键训练你的第一个适配器",
           "quickstart.sentiment": "试一试：训练一个情感分类器（笔记本 CPU 上约一分钟）",
           "quickstart.ner": "试一试：训练一个命名实体识别模型（笔记本 CPU 上约一分钟）",
           "quickstart.idle": "每个按钮会载入 `finetune/samples` 中的示例数据集，用快速设置（MiniLM 编码器、4-bit、"
                              "LoRA + 分类头）填好下面的表单并开始训练。训练结束后，新适配器会在页面顶部被选中，"
                              "本页底部显示基础模型与适配器的对比表。"},
}


def quickstart_form(name: str) -> dict:
    """The full form (every field of the tab) for quickstart ``name``."""
    return {**{k: DEFAULTS[k] for k in FORM_FIELDS}, **QUICKSTARTS[name].settings}


def start_quickstart(jobs: JobManager, name: str, owner: str) -> str:
    """Queue the quickstart run ``name`` for ``owner``; returns the job id."""
    view = inspect_dataset(SAMPLES_DIR / QUICKSTARTS[name].sample)
    return start_training(jobs, view, quickstart_form(name), owner)


def status_line(snapshot: JobSnapshot | None) -> str:
    """What the quickstart's own line says about its job."""
    if snapshot is None:
        return IDLE
    if snapshot.state == "finished":
        return (f"✅ Done: adapter **{snapshot.adapter}** is selected in *Adapter for Chat and tasks* above. "
                f"Compare base and adapter in the table at the bottom, then try it in the "
                f"{'Classification' if snapshot.config.task == 'classification' else 'NER'} tab.")
    if snapshot.state in ("failed", "stopped"):
        return f"The run {snapshot.state}: {snapshot.error or 'see the log below'}. Press the button to try again."
    return "🏃 Training the sample run: watch the progress, loss curve and log below."


def adapter_to_select(jobs: JobManager, job_id: str | None) -> str | None:
    """The adapter of the quickstart job ``job_id`` once it has finished, else None."""
    snapshot = jobs.find(job_id) if job_id else None
    return snapshot.adapter if snapshot is not None and snapshot.state == "finished" else None


@dataclass
class QuickstartPanel:
    buttons: dict
    status: gr.Markdown
    job: gr.State  # the quickstart job this session started: the status line follows it, and the app selects
    # its adapter once it has finished (assistant.ui.adapter_lists)

    def wire(self, jobs: JobManager, browser: gr.BrowserState, progress, form: dict, sample: gr.Dropdown,
             load_sample, dataset_outputs: list, timer: gr.Timer) -> None:
        """Start on click (the tab's ``browser`` state then follows the job), fill the form and the dataset view
        (``load_sample(name, task, method)`` gives ``dataset_outputs``), and keep the status line current."""
        from assistant.ui.finetune_view import progress_line

        names = list(FORM_FIELDS)
        private = {"api_visibility": "private"}

        @shows_user_errors
        def on_click(name: str, state: dict | None):
            state = dict(state or {})
            owner = state.get("owner") or secrets.token_urlsafe(16)
            job_id = start_quickstart(jobs, name, owner)
            values = quickstart_form(name)
            return {browser: {"owner": owner, "job": job_id}, self.job: job_id,
                    progress: progress_line(jobs.get(job_id), owner), self.status: status_line(jobs.get(job_id)),
                    sample: QUICKSTARTS[name].sample, **{form[n]: values[n] for n in names}}

        outputs = [browser, self.job, progress, self.status, sample, *(form[n] for n in names)]
        for name, button in self.buttons.items():
            button.click(lambda state, name=name: on_click(name, state), browser, outputs, **private).then(
                load_sample, [sample, form["task"], form["method"]], dataset_outputs, **private)

        def on_tick(job_id, shown_text):
            if not job_id:
                return gr.skip()  # the translated introduction stays
            text = status_line(jobs.find(job_id))
            return gr.skip() if text == shown_text else text

        timer.tick(on_tick, [self.job, self.status], self.status, show_progress="hidden", concurrency_limit=None,
                   **private)


def build_quickstart() -> QuickstartPanel:
    """The buttons and status line, laid out where this is called (the top of the Fine-tune tab)."""
    with gr.Group(elem_id="quickstart"):
        gr.Markdown(tr("quickstart.title"))
        with gr.Row():
            buttons = {name: gr.Button(tr(f"quickstart.{name}"), variant="primary" if name == "sentiment" else
                                       "secondary", elem_id=f"quickstart-{name}") for name in QUICKSTARTS}
        status = gr.Markdown(tr("quickstart.idle"), elem_id="quickstart-status")
    return QuickstartPanel(buttons, status, gr.State(None))

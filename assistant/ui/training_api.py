"""Fine-tuning through the Gradio API: start, follow, stop and resume a job from code.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    started = client.predict(handle_file("reviews.csv"), "classification", "minilm-l6-v2", "head", "supervised",
                             40, 1.0, "reviews-head", "", api_name="/finetune_start")   # {"job_id", "run_id"}
    client.predict(started["job_id"], "", api_name="/finetune_status")
    client.predict(started["job_id"], "", api_name="/finetune_stop")     # and /finetune_resume

The same checks as the Fine-tune tab (the dataset is validated with row numbers, names before work).
Jobs started here belong to the API: the API can stop and resume them, a browser cannot. With an
operator password set, every call needs it (``admin_password``), throttled per client like the tab.
"""

from __future__ import annotations

import gradio as gr

from assistant.arguments import number_arg, text_arg
from assistant.core.errors import InputError
from assistant.ui.admin_lock import AdminLock
from assistant.ui.finetune_forms import inspect_dataset, start_training
from assistant.ui.uploads import uploaded_file
from assistant.ui.user_errors import shows_user_errors
from finetune.tasks import checked_task_and_method, data_task

API_OWNER = "api"


def status(jobs, job_id: str) -> dict:
    snapshot = jobs.get(job_id)
    loss = snapshot.train_points[-1][1] if snapshot.train_points else None
    return {"state": snapshot.state, "step": snapshot.step, "total_steps": snapshot.total_steps,
            "pid": jobs.pid(job_id), "loss": loss, "eta_s": snapshot.eta, "metrics": snapshot.metrics,
            "adapter": snapshot.adapter, "error": snapshot.error, "run_id": snapshot.run_id,
            "resumable": snapshot.resumable}


def register_training_api(jobs, admin_password: str = "") -> None:
    """Hidden components and the four public endpoints, inside the current Blocks."""
    lock = AdminLock(admin_password) if admin_password else None

    def check(given, request: gr.Request | None) -> None:
        if lock is None:
            return
        client = getattr(getattr(request, "client", None), "host", None) or "unknown"
        ok, message = lock.check(given, client)
        if not ok:
            raise InputError(message + " Pass the operator password as admin_password.")

    @shows_user_errors
    def start(data_file, task, base, approach, method, max_steps, epochs, output, admin_password,
              request: gr.Request = None) -> dict:
        check(admin_password, request)
        if not data_file:
            raise InputError("'data_file' is required: upload the training data (CSV, TSV, JSON Lines, ...).")
        task, method = checked_task_and_method(text_arg(task, "task"), text_arg(method, "method"))
        view = inspect_dataset(uploaded_file(data_file, "data_file"), data_task(task, method))
        form = {"task": task, "method": method, "approach": text_arg(approach, "approach") or "auto",
                "max_steps": number_arg(max_steps or 0, "max_steps", 0, 1_000_000, integer=True),
                "epochs": number_arg(epochs or 1.0, "epochs", 0.01, 100), "output": text_arg(output, "output",
                                                                                            optional=True)}
        if text_arg(base, "base", optional=True).strip():
            form["base"] = base.strip()
        job_id = start_training(jobs, view, form, owner=API_OWNER)
        return {"job_id": job_id, "run_id": jobs.get(job_id).run_id}

    @shows_user_errors
    def follow(job_id, admin_password, request: gr.Request = None) -> dict:
        check(admin_password, request)
        return status(jobs, text_arg(job_id, "job_id"))

    @shows_user_errors
    def stop(job_id, admin_password, request: gr.Request = None) -> dict:
        check(admin_password, request)
        jobs.stop(text_arg(job_id, "job_id"), owner=API_OWNER)
        return status(jobs, job_id)

    @shows_user_errors
    def resume(job_id, admin_password, request: gr.Request = None) -> dict:
        check(admin_password, request)
        new_id = jobs.resume(text_arg(job_id, "job_id"), owner=API_OWNER)
        return {"job_id": new_id, "run_id": jobs.get(new_id).run_id}

    with gr.Group(visible=False):
        data_file = gr.File(label="data_file", type="filepath")
        fields = {name: gr.Textbox(label=name) for name in ("task", "base", "approach", "method", "output")}
        max_steps, epochs = gr.Number(label="max_steps", value=0), gr.Number(label="epochs", value=1.0)
        password, job = gr.Textbox(label="admin_password"), gr.Textbox(label="job_id")
        result = gr.JSON()
        trigger = gr.Button()
    inputs = [data_file, fields["task"], fields["base"], fields["approach"], fields["method"], max_steps, epochs,
              fields["output"], password]
    trigger.click(start, inputs, result, api_name="finetune_start", api_visibility="public")
    trigger.click(follow, [job, password], result, api_name="finetune_status", api_visibility="public")
    trigger.click(stop, [job, password], result, api_name="finetune_stop", api_visibility="public")
    trigger.click(resume, [job, password], result, api_name="finetune_resume", api_visibility="public")

"""The model picker above the tabs and the header line saying what is loaded.

Picking a model loads it (``ModelPool.switch_default``) while the current one keeps serving, then every tab
uses it from its next request on; the adapter picker then lists the adapters trained on it. Where the operator
set a password, only a session that unlocked the Fine-tune tab may switch (the model is shared by everyone).
A model that cannot be switched to (unusable, would not fit) leaves the picker on the model still served,
with the reason shown.

    header = build_header(pool)                                     # inside a gr.Blocks
    picker = build_model_picker(pool)
    wire_model_picker(picker, header, pool, unlocked, refresh, [adapter_picker])
"""

from __future__ import annotations

import gradio as gr

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError, UserError
from assistant.model_download import download, download_field_state
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors

TRANSLATIONS = {
    "en": {"models.picker": "Model", "models.picker_info":
           "Every chat model this server has: embedded, in the models folder, allowed hub ids. ● loaded.",
           "models.download": "Download a model from the hub", "models.hub_id": "Hub id (owner/repo or owner/repo/file.gguf)",
           "models.fetch": "Download"},
    "zh": {"models.picker": "模型", "models.picker_info": "本服务器的所有对话模型：内置、模型文件夹中的、允许的 Hub 模型。● 表示已加载。",
           "models.download": "从 Hub 下载模型", "models.hub_id": "Hub 模型 id（owner/repo 或 owner/repo/file.gguf）",
           "models.fetch": "下载"},
}


def model_choices(pool) -> list[tuple[str, str]]:
    """(label, id) of every model in the list; loaded ones marked, unusable ones with the reason."""
    loaded = set(pool.loaded_ids())
    return [(("● " if entry.id in loaded else "") + entry.describe(), entry.id) for entry in pool.catalog.entries()]


def loaded_line(pool) -> str:
    """The header: each loaded model (the UI's first), its engine, precision and memory."""
    parts = []
    for served in sorted(pool.loaded(), key=lambda s: s.entry.id != pool.default_id):
        loaded = served.loaded
        role = " (the UI's model)" if served.entry.id == pool.default_id else ""
        parts.append(f"**{loaded.name}**{role} · {loaded.engine_name} · {loaded.precision} · "
                     f"{human_bytes(loaded.footprint_bytes)}")
    return "**Loaded:** " + ("; ".join(parts) if parts else "no model")


def switch_model(pool, name: str, allowed: bool = True) -> None:
    """Make ``name`` the UI's model (loading it first); ``InputError`` when not allowed or not possible."""
    if not allowed:
        raise InputError("Only the operator can switch the model everyone uses: enter the operator password in "
                         "the Fine-tune tab first.")
    if not isinstance(name, str) or not name:
        raise InputError("Pick a model from the list.")
    pool.switch_default(name)


def current_view(pool) -> tuple[gr.Dropdown, str]:
    """The picker and header as they are now (on page load: another session may have switched)."""
    return gr.Dropdown(choices=model_choices(pool), value=pool.default_id), loaded_line(pool)


def build_header(pool) -> gr.Markdown:
    """The line saying what is loaded (``loaded_line``)."""
    return gr.Markdown(loaded_line(pool), elem_id="loaded-models")


def build_model_picker(pool) -> gr.Dropdown:
    """The picker; ``wire_model_picker`` makes it switch."""
    return gr.Dropdown(model_choices(pool), value=pool.default_id, label=tr("models.picker"),
                       info=tr("models.picker_info"), elem_id="model-picker", interactive=True)


def wire_model_picker(picker: gr.Dropdown, header: gr.Markdown, pool, unlocked: gr.State | None,
                      refresh_others, others: list) -> None:
    """Switch on change. ``unlocked``: the session's operator state (None: no password set). ``refresh_others``:
    called after a switch with the values of ``others`` (e.g. the adapter picker), returns their updates."""

    def changed(name, is_unlocked, *current):
        try:
            switch_model(pool, name, unlocked is None or bool(is_unlocked))
        except UserError as exc:
            gr.Warning(str(exc))  # the picker goes back to the model still served
        return (*current_view(pool), *refresh_others(*current))

    inputs = [picker, unlocked if unlocked is not None else gr.State(True), *others]
    # Its own queue: loading a model must not wait for (or hold up) replies on the model still served.
    picker.input(changed, inputs, [picker, header, *others], concurrency_id="model-switch", concurrency_limit=1,
                 api_visibility="private")


def build_download(pool, picker: gr.Dropdown, unlocked: gr.State | None) -> None:
    """A hub id field and a Download button (with a progress bar) into the models folder; off, with the reason
    in the field, where ``--allow-hub-models`` allows nothing or the hub cannot be reached."""
    allowed = pool.catalog.hub_ids
    off = download_field_state(allowed)
    with gr.Accordion(tr("models.download"), open=False):
        with gr.Row():
            hub_id = gr.Textbox(label=tr("models.hub_id"), interactive=not off, placeholder=off or "owner/repo/file.gguf",
                                info=off or None, scale=4, elem_id="model-hub-id")
            fetch = gr.Button(tr("models.fetch"), interactive=not off, scale=1, elem_id="model-fetch")
        status = gr.Markdown(elem_id="model-fetch-status")

    @shows_user_errors
    def fetched(name, is_unlocked, progress=gr.Progress(track_tqdm=True)):
        if unlocked is not None and not is_unlocked:
            raise InputError("Only the operator can download models: enter the operator password in the "
                             "Fine-tune tab first.")
        path = download(name, pool.catalog.models_dir, allowed)
        return f"Downloaded to `{path}`: pick it in the model list.", gr.Dropdown(choices=model_choices(pool))

    fetch.click(fetched, [hub_id, unlocked if unlocked is not None else gr.State(True)], [status, picker],
                concurrency_id="model-download", concurrency_limit=1, api_visibility="private")

"""The adapters panel: list trained adapters (broken ones with the reason), rename, delete, download as zip,
merge into the base and download the merged model, publish to the Hugging Face Hub.

    with gr.Blocks() as demo:
        panel = build_adapters_panel(store)                       # merged exports go to DATA_DIR/exports/<name>
        panel = build_adapters_panel(store, allow_manage=False)   # a public Space: no rename, delete or publish
        finetune_tab.follow_adapters(panel=panel)   # redrawn when the store changes, here or in a training run

A rename or delete redraws the panel at once; the other adapter lists see it through the store's version
(``assistant.ui.adapter_lists``).

Tests: ``pytest tests/test_finetune_tab.py tests/test_publish.py tests/test_export.py -q``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from assistant.ui.downloads import download_path
from assistant.ui.user_errors import shows_user_errors
from assistant.core.errors import InputError
from assistant.ui.i18n import tr
from finetune.adapters import AdapterInfo, AdapterStore
from finetune.export import export_merged, zip_export
from finetune.export_gguf import export_gguf
from finetune.publish import publish

COLUMNS = ["name", "task", "base", "created", "key metric", "status"]
KEY_METRICS = {"classification": "accuracy", "ner": "f1", "translation": "bleu", "faq": "token_f1",
               "instruction": "perplexity", "unsupervised": "perplexity"}

TRANSLATIONS = {
    "en": {
        "adapters.title": "Adapters",
        "adapters.table": "Trained adapters",
        "adapters.pick": "Adapter",
        "adapters.new_name": "New name",
        "adapters.rename": "Rename",
        "adapters.confirm": "Yes, delete this adapter for good",
        "adapters.delete": "Delete",
        "adapters.export": "Download as zip",
        "adapters.zip": "Zip file",
        "adapters.refresh": "Refresh",
        "adapters.merge": "Merge and export (full model, zip)",
        "adapters.merged_zip": "Merged model (zip)",
        "adapters.gguf": "Export for llama.cpp / Ollama (GGUF q8_0 + Modelfile, zip)",
        "adapters.gguf_zip": "GGUF export (zip)",
        "adapters.publish_title": "Publish to the Hub",
        "adapters.repo_id": "Repo id (owner/name)",
        "adapters.private": "Private repo",
        "adapters.token": "Hugging Face token (write access; empty: HF_TOKEN from the server environment)",
        "adapters.publish": "Publish",
    },
    "zh": {
        "adapters.title": "适配器",
        "adapters.table": "已训练的适配器",
        "adapters.pick": "适配器",
        "adapters.new_name": "新名称",
        "adapters.rename": "重命名",
        "adapters.confirm": "确认永久删除该适配器",
        "adapters.delete": "删除",
        "adapters.export": "下载为 zip",
        "adapters.zip": "zip 文件",
        "adapters.refresh": "刷新",
        "adapters.merge": "合并并导出（完整模型，zip）",
        "adapters.merged_zip": "合并后的模型（zip）",
        "adapters.gguf": "导出给 llama.cpp / Ollama（GGUF q8_0 + Modelfile，zip）",
        "adapters.gguf_zip": "GGUF 导出（zip）",
        "adapters.publish_title": "发布到 Hugging Face Hub",
        "adapters.repo_id": "仓库 id（owner/name）",
        "adapters.private": "私有仓库",
        "adapters.token": "Hugging Face 令牌（需写权限；留空则使用服务器环境变量 HF_TOKEN）",
        "adapters.publish": "发布",
    },
}


def key_metric(info: AdapterInfo) -> str:
    """The task's main metric for the adapter, with the base model's value: ``accuracy 0.917 (base 0.500)``."""
    name = KEY_METRICS.get(info.task)
    adapter, base = (info.metrics.get("adapter") or {}), (info.metrics.get("base") or {})
    if name not in adapter:
        name = next((k for k, v in adapter.items() if isinstance(v, (int, float))), None)
    if name is None or not isinstance(adapter.get(name), (int, float)):
        return ""
    base_value = base.get(name)
    against = f" (base {base_value:.3f})" if isinstance(base_value, (int, float)) else ""
    return f"{name} {adapter[name]:.3f}{against}"


def adapter_rows(store: AdapterStore) -> list[list[str]]:
    """One table row per adapter, newest first; a broken adapter says what is wrong in ``status``."""
    return [[info.name, info.task, info.base_model, info.created.replace("T", " ")[:19],
             "" if info.broken else key_metric(info), f"broken: {info.broken}" if info.broken else "ok"]
            for info in store.list()]


def rename_adapter(store: AdapterStore, name: str | None, new_name: str) -> str:
    if not name:
        raise InputError.keyed("adapters.pick_to_rename")
    return store.rename(name, new_name or "").name


def delete_adapter(store: AdapterStore, name: str | None, confirmed: bool) -> None:
    if not name:
        raise InputError.keyed("adapters.pick_to_delete")
    if not confirmed:
        raise InputError.keyed("adapters.confirm_delete", name=name)
    store.delete(name)


def publish_adapter(store: AdapterStore, name: str | None, repo_id: str, private: bool, token: str | None,
                    api=None) -> str:
    """Publish ``name`` to ``repo_id``; a Markdown line with the repo URL. An empty token means HF_TOKEN."""
    if not name:
        raise InputError.keyed("adapters.pick_to_publish")
    url = publish(store.get(name), repo_id, token or None, private=bool(private), api=api)
    return f"Published **{name}** to [{url}]({url})"


def export_adapter(store: AdapterStore, name: str | None, merged_root: Path) -> Path:
    """Merge ``name`` into its base as ``merged_root/<name>`` (an earlier export is replaced); its zip."""
    if not name:
        raise InputError.keyed("adapters.pick_to_merge")
    info = store.get(name)
    return zip_export(export_merged(info, Path(merged_root) / info.name, overwrite=True))


def export_adapter_gguf(store: AdapterStore, name: str | None, merged_root: Path) -> Path:
    """Merge ``name`` into one q8_0 GGUF file with a Modelfile, as ``merged_root/<name>-gguf``; its zip."""
    if not name:
        raise InputError.keyed("adapters.pick_to_export_gguf")
    info = store.get(name)
    return zip_export(export_gguf(info, Path(merged_root) / f"{info.name}-gguf", quant="q8_0", overwrite=True))


@dataclass
class AdaptersPanel:
    """Handles of the panel, for wiring it to the rest of the app."""

    table: gr.Dataframe
    picker: gr.Dropdown
    refresh: object  # (selected=None) -> updates for ``outputs``, keeping ``selected`` picked if it still exists
    outputs: list


def build_adapters_panel(store: AdapterStore, export_dir: str | Path | None = None, *, allow_manage: bool = True,
                         merged_dir: str | Path | None = None) -> AdaptersPanel:
    """Lay out the adapter list and its actions inside the current Blocks; returns the handles.

    ``export_dir``: where adapter zips go (default: a fresh folder of ``assistant.ui.downloads``). ``merged_dir``: where merged models go
    (default: DATA_DIR/exports, beside the store's adapters folder). ``allow_manage=False`` (an operator lock
    for public Spaces) leaves out rename, delete and publish: not hidden widgets but absent ones, so no
    request can reach them.
    """
    exports = Path(export_dir) if export_dir else None
    merged_root = Path(merged_dir) if merged_dir else store.root.parent / "exports"

    def refresh(selected: str | None = None):
        rows = adapter_rows(store)
        names = [row[0] for row in rows]
        value = selected if selected in names else (names[0] if names else None)
        return (gr.update(value={"headers": COLUMNS, "data": rows}),
                gr.update(choices=names, value=value))

    rows = adapter_rows(store)
    gr.Markdown(tr("empty.adapters"), elem_classes=["output-hint"])
    table = gr.Dataframe(value={"headers": COLUMNS, "data": rows}, headers=COLUMNS,
                         interactive=False, wrap=True, label=tr("adapters.table"), elem_id="adapters-table")
    with gr.Row():
        picker = gr.Dropdown(choices=[r[0] for r in rows], value=None, label=tr("adapters.pick"),
                             elem_id="adapters-pick", scale=2)
        refresh_button = gr.Button(tr("adapters.refresh"), elem_id="adapters-refresh", scale=1)
    outputs = [table, picker]
    private = {"api_visibility": "private"}
    if allow_manage:
        _build_manage_rows(store, picker, outputs, refresh)
    with gr.Row():
        export = gr.Button(tr("adapters.export"), elem_id="adapters-export", scale=1)
        zip_file = gr.File(label=tr("adapters.zip"), interactive=False, elem_id="adapters-zip", scale=2)
    with gr.Row():
        merge = gr.Button(tr("adapters.merge"), elem_id="adapters-merge", scale=1)
        merged_zip = gr.File(label=tr("adapters.merged_zip"), interactive=False, elem_id="adapters-merged-zip",
                             scale=2)
    with gr.Row():
        gguf = gr.Button(tr("adapters.gguf"), elem_id="adapters-gguf", scale=1)
        gguf_zip = gr.File(label=tr("adapters.gguf_zip"), interactive=False, elem_id="adapters-gguf-zip", scale=2)
    if allow_manage:
        _build_publish_section(store, picker)

    @shows_user_errors
    def on_export(name):
        if not name:
            raise InputError.keyed("adapters.pick_to_download")
        return str(store.export_zip(name, exports or download_path(name).parent))

    @shows_user_errors
    def on_merge(name, export=export_adapter):
        return str(export(store, name, merged_root))

    refresh_button.click(lambda name: refresh(name), picker, outputs, **private)
    export.click(on_export, picker, zip_file, **private)
    merge.click(on_merge, picker, merged_zip, concurrency_id="model", concurrency_limit=1, **private)
    gguf.click(lambda name: on_merge(name, export_adapter_gguf), picker, gguf_zip, concurrency_id="model",
               concurrency_limit=1, **private)
    return AdaptersPanel(table, picker, refresh, outputs)


def _build_manage_rows(store: AdapterStore, picker, outputs, refresh) -> None:
    """Rename and delete: only built when the operator allows managing adapters."""
    with gr.Row():
        new_name = gr.Textbox(label=tr("adapters.new_name"), elem_id="adapters-new-name", scale=2)
        rename = gr.Button(tr("adapters.rename"), elem_id="adapters-rename", scale=1)
    with gr.Row():
        confirm = gr.Checkbox(label=tr("adapters.confirm"), value=False, elem_id="adapters-confirm", scale=2)
        delete = gr.Button(tr("adapters.delete"), variant="stop", elem_id="adapters-delete", scale=1)

    @shows_user_errors
    def on_rename(name, wanted):
        renamed = rename_adapter(store, name, wanted)
        return (*refresh(renamed), "")

    @shows_user_errors
    def on_delete(name, confirmed):
        delete_adapter(store, name, confirmed)
        return (*refresh(), False)

    rename.click(on_rename, [picker, new_name], [*outputs, new_name], api_visibility="private")
    delete.click(on_delete, [picker, confirm], [*outputs, confirm], api_visibility="private")


def _build_publish_section(store: AdapterStore, picker) -> None:
    """Repo id, private, token (a password field, never sent back to the browser) and Publish."""
    with gr.Accordion(tr("adapters.publish_title"), open=False, elem_id="adapters-publish-section"):
        with gr.Row():
            repo_id = gr.Textbox(label=tr("adapters.repo_id"), placeholder="alice/sentiment-lora",
                                 elem_id="adapters-repo-id", scale=2)
            private_repo = gr.Checkbox(label=tr("adapters.private"), value=False, elem_id="adapters-private", scale=1)
        token = gr.Textbox(label=tr("adapters.token"), type="password", elem_id="adapters-token")
        publish_button = gr.Button(tr("adapters.publish"), variant="primary", elem_id="adapters-publish")
        result = gr.Markdown(elem_id="adapters-publish-result")

    @shows_user_errors  # publish() already replaced the token by *** in its messages
    def on_publish(name, repo, is_private, secret):
        return publish_adapter(store, name, repo, is_private, secret)

    publish_button.click(on_publish, [picker, repo_id, private_repo, token], result, api_visibility="private")

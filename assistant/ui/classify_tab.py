"""The Classify tab and the ``/classify`` API endpoint: widgets wired to
``assistant.tasks.classification``, nothing more.

    with gr.Blocks() as demo:
        build_classify_tab(loaded)
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from assistant.arguments import text_arg
from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel
from assistant.served_adapters import head_label_scores
from assistant.tasks import classification
from assistant.ui import examples
from assistant.ui.adapter_choice import picker_inputs, run_with_adapter
from assistant.ui.chat_tab import MODEL_QUEUE
from assistant.ui.downloads import download_path
from assistant.ui.empty_states import hint
from assistant.ui.examples import examples_that_run
from assistant.ui.i18n import tr
from assistant.ui.uploads import uploaded_file
from assistant.ui.user_errors import shows_user_errors

MAX_FILE_ROWS = 2_000
DEFAULT_LABELS = "positive, negative"

TRANSLATIONS = {
    "en": {
        "classify.tab": "Classify",
        "classify.intro": "Label a text with one of your labels. Probabilities come from the model's "
                          "likelihood of each label as its answer.",
        "classify.text": "Text",
        "classify.examples": "Examples (click one to run it)",
        "classify.labels": "Labels (comma-separated, 2 to 50)",
        "classify.run": "Classify",
        "classify.scores": "Label probabilities",
        "classify.file": "Or upload a table (CSV / TSV with a 'text' column, or .txt with one text per line)",
        "classify.run_file": "Classify the file",
        "classify.result_file": "Predictions (download)",
    },
    "zh": {
        "classify.tab": "文本分类",
        "classify.intro": "从你给出的标签中为文本选择一个。概率来自模型把每个标签作为回答的似然。",
        "classify.text": "文本",
        "classify.examples": "示例（点击即可运行）",
        "classify.labels": "标签（用逗号分隔，2 到 50 个）",
        "classify.run": "分类",
        "classify.scores": "各标签概率",
        "classify.file": "或上传表格（含 text 列的 CSV / TSV，或每行一条文本的 .txt）",
        "classify.run_file": "对文件分类",
        "classify.result_file": "预测结果（下载）",
    },
}


@shows_user_errors
def classify_for_ui(loaded: LoadedModel, text: str, labels: str) -> dict[str, float]:
    """{label: probability} for ``gr.Label``; bad input becomes ``gr.Error``."""
    return classification.classify(loaded, text, labels)["scores"]


@shows_user_errors
def classify_file(loaded: LoadedModel, path: str | None, labels: str, progress=None) -> str:
    """Classify every row of an uploaded table; return the path of the table with predictions."""
    if not path:
        raise InputError.keyed("classify.upload_first")
    path = str(uploaded_file(path))
    label_list = classification.parse_labels(labels)
    header, rows, column = classification.read_text_table(path, max_rows=MAX_FILE_ROWS)
    texts = classification.check_texts([row[column] for row in rows], Path(path).name)
    tick = (lambda done, total: progress((done, total), desc="Classifying", unit="rows")) if progress else None
    results = classification.classify_many(loaded, texts, label_list, tick)
    source = Path(path)
    suffix = ".tsv" if source.suffix.lower() == ".tsv" else ".csv"
    target = download_path(f"{source.stem}-predictions{suffix}")
    return str(classification.write_predictions(target, header, rows, results))


def build_classify_tab(loaded: LoadedModel, adapters=None, picker: gr.Dropdown | None = None) -> None:
    """Lay out the Classify tab inside the current ``gr.Blocks``; register ``/classify``.

    ``adapters`` + ``picker``: the session's adapter (generative, or a classification head) runs the text box.
    """
    gr.Markdown(tr("classify.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label=tr("classify.text"), lines=5, elem_id="classify-text")
            labels = gr.Textbox(label=tr("classify.labels"), value=DEFAULT_LABELS, elem_id="classify-labels")
            run = gr.Button(tr("classify.run"), variant="primary", elem_id="classify-run")
        with gr.Column(scale=2):
            scores = gr.Label(label=tr("classify.scores"), num_top_classes=10, elem_id="classify-scores")
            hint("classify_scores")
    with gr.Row():
        upload = gr.File(label=tr("classify.file"), file_types=[".csv", ".tsv", ".txt"], elem_id="classify-file")
        with gr.Column():
            run_file = gr.Button(tr("classify.run_file"), elem_id="classify-run-file")
            download = gr.File(label=tr("classify.result_file"), interactive=False, elem_id="classify-download")
            hint("classify_download")

    def on_classify(text_value, labels_value, adapter):
        def with_head(head):
            return head_label_scores(head, classification.check_text(text_value))

        return run_with_adapter(adapters, adapter, "classification",
                                lambda: classify_for_ui(loaded, text_value, labels_value), with_head)

    def on_classify_file(path, labels_value, progress=gr.Progress()):
        return classify_file(loaded, path, labels_value, progress)

    queue = {"concurrency_id": MODEL_QUEUE, "concurrency_limit": 1, "api_visibility": "private"}
    for trigger in (run.click, text.submit):
        trigger(on_classify, [text, labels, *picker_inputs(picker)], scores, **queue)
    examples_that_run(examples.CLASSIFY, [text, labels], on_classify, [text, labels, *picker_inputs(picker)], scores,
                      tr("classify.examples"), MODEL_QUEUE, ["Text / 文本", "Labels / 标签"])
    run_file.click(on_classify_file, [upload, labels], download, **queue)

    @shows_user_errors
    def classify(text: str, labels: str = DEFAULT_LABELS) -> dict:
        """Classify one text; labels are comma-separated. Returns {"label": str, "scores": {label: prob}}."""
        return classification.classify(loaded, text_arg(text, "text"), text_arg(labels, "labels"))

    gr.api(classify, api_name="classify", concurrency_id=MODEL_QUEUE, concurrency_limit=1)

"""The Translate tab and the ``/translate`` API endpoint: widgets wired to
``assistant.tasks.translation``.

    with gr.Blocks() as demo:
        build_translate_tab(loaded)
"""

from __future__ import annotations

import gradio as gr

from assistant.ui import examples
from assistant.ui.examples import examples_that_run
from assistant.ui.downloads import download_path
from assistant.ui.uploads import uploaded_file
from assistant.ui.user_errors import shows_user_errors
from assistant.arguments import text_arg
from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel
from assistant.tasks import translation
from assistant.ui.adapter_choice import picker_inputs, run_with_adapter
from assistant.ui.chat_tab import MODEL_QUEUE
from assistant.ui.i18n import tr
from assistant.ui.empty_states import hint, placeholder

TRANSLATIONS = {
    "en": {
        "translate.examples": "Examples (click one to run it)",
        "translate.tab": "Translate",
        "translate.intro": "Translate line by line; empty lines are kept. Auto-detect recognises English, "
                           "Chinese, Japanese, German, French and Spanish from the script and common words.",
        "translate.text": "Text",
        "translate.source": "From",
        "translate.target": "To",
        "translate.auto": "Auto-detect",
        "translate.run": "Translate",
        "translate.output": "Translation",
        "translate.detected": "Source language",
        "translate.file": "Or upload a .txt file (one sentence per line)",
        "translate.run_file": "Translate the file",
        "translate.result_file": "Translated file (download)",
    },
    "zh": {
        "translate.examples": "示例（点击即可运行）",
        "translate.tab": "翻译",
        "translate.intro": "逐行翻译，空行保留。自动检测可根据文字和常用词识别英语、中文、日语、德语、法语和西班牙语。",
        "translate.text": "原文",
        "translate.source": "源语言",
        "translate.target": "目标语言",
        "translate.auto": "自动检测",
        "translate.run": "翻译",
        "translate.output": "译文",
        "translate.detected": "源语言",
        "translate.file": "或上传 .txt 文件（每行一句）",
        "translate.run_file": "翻译文件",
        "translate.result_file": "译文文件（下载）",
    },
}

LANGUAGE_CHOICES = [(f"{name} ({code})", code) for code, name in translation.LANGUAGES.items()]


@shows_user_errors
def translate_for_ui(loaded: LoadedModel, text: str, source_lang: str, target_lang: str) -> tuple[str, str]:
    """(translation, the source language used); bad input becomes ``gr.Error``."""
    text = translation.check_text(text)
    source, target = translation.resolve_languages(text, source_lang, target_lang)
    result = "\n".join(translation.translate_lines(loaded, text.split("\n"), source, target))
    return result, f"{translation.LANGUAGES[source]} ({source})"


@shows_user_errors
def translate_file(loaded: LoadedModel, path: str | None, source_lang: str, target_lang: str, progress=None) -> str:
    """Translate an uploaded text file line by line; return the path of the translated file."""
    if not path:
        raise InputError.keyed("translate.upload_first")
    source = uploaded_file(path)
    if source.suffix.lower() != ".txt":
        raise InputError(f"'{source.name}' is not a .txt file: upload plain text, one sentence per line.")
    if source.stat().st_size > 4 * translation.MAX_TEXT_CHARS:  # 4 bytes per character at most in UTF-8
        raise InputError(f"'{source.name}' is larger than the {translation.MAX_TEXT_CHARS:,} characters "
                         "translated at once. Split it into smaller files.")
    try:
        text = translation.check_text(source.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError.keyed("upload.not_utf8", name=source.name) from None
    tick = (lambda done, total: progress((done, total), desc="Translating", unit="lines")) if progress else None
    lines = translation.translate_lines(loaded, text.rstrip("\n").split("\n"), source_lang, target_lang,
                                        progress=tick)
    code = translation.language_code(target_lang)
    target = download_path(f"{source.stem}-{code}.txt")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(target)


def build_translate_tab(loaded: LoadedModel, adapters=None, picker: gr.Dropdown | None = None) -> None:
    """Lay out the Translate tab inside the current ``gr.Blocks``; register ``/translate``.

    ``adapters`` + ``picker``: the session's generative adapter runs the text box.
    """
    gr.Markdown(tr("translate.intro"))
    with gr.Row():
        source_lang = gr.Dropdown([(tr("translate.auto"), translation.AUTO)] + LANGUAGE_CHOICES,
                                  value=translation.AUTO, label=tr("translate.source"), elem_id="translate-source")
        target_lang = gr.Dropdown(LANGUAGE_CHOICES, value="zh", label=tr("translate.target"),
                                  elem_id="translate-target")
    with gr.Row():
        text = gr.Textbox(label=tr("translate.text"), lines=6, elem_id="translate-text")
        output = gr.Textbox(label=tr("translate.output"), lines=6, interactive=False, elem_id="translate-output",
                            buttons=["copy"], placeholder=placeholder("translate_output"))
    with gr.Row():
        run = gr.Button(tr("translate.run"), variant="primary", elem_id="translate-run")
        detected = gr.Textbox(label=tr("translate.detected"), interactive=False, elem_id="translate-detected",
                              placeholder=placeholder("translate_detected"))
    with gr.Row():
        upload = gr.File(label=tr("translate.file"), file_types=[".txt"], elem_id="translate-file")
        with gr.Column():
            run_file = gr.Button(tr("translate.run_file"), elem_id="translate-run-file")
            download = gr.File(label=tr("translate.result_file"), interactive=False, elem_id="translate-download")
            hint("translate_download")

    def on_run(text_value, source_value, target_value, adapter):
        return run_with_adapter(adapters, adapter, "translation",
                                lambda: translate_for_ui(loaded, text_value, source_value, target_value))

    def on_run_file(path, source_value, target_value, progress=gr.Progress()):
        return translate_file(loaded, path, source_value, target_value, progress)

    queue = {"concurrency_id": MODEL_QUEUE, "concurrency_limit": 1, "api_visibility": "private"}
    run.click(on_run, [text, source_lang, target_lang, *picker_inputs(picker)], [output, detected], **queue)
    run_file.click(on_run_file, [upload, source_lang, target_lang], download, **queue)
    examples_that_run(examples.TRANSLATE, [text, source_lang, target_lang], on_run,
                      [text, source_lang, target_lang, *picker_inputs(picker)], [output, detected],
                      tr("translate.examples"), MODEL_QUEUE, ["Text / 文本", "From / 源语言", "To / 目标语言"])

    @shows_user_errors
    def translate(text: str, source_lang: str = translation.AUTO, target_lang: str = "en") -> str:
        """Translate ``text`` line by line (empty lines kept). Languages: en, zh, de, fr, es, ja; source may be auto."""
        return translation.translate(loaded, text_arg(text, "text"), text_arg(source_lang, "source_lang"),
                                     text_arg(target_lang, "target_lang"))

    gr.api(translate, api_name="translate", concurrency_id=MODEL_QUEUE, concurrency_limit=1)

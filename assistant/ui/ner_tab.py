"""The NER tab and the ``/ner`` API endpoint: widgets wired to ``assistant.tasks.ner``.

    with gr.Blocks() as demo:
        build_ner_tab(loaded)
"""

from __future__ import annotations

import gradio as gr

from assistant.arguments import text_arg
from assistant.core.loading import LoadedModel
from assistant.served_adapters import head_entities
from assistant.tasks import ner
from assistant.ui import examples
from assistant.ui.adapter_choice import picker_inputs, run_with_adapter
from assistant.ui.chat_tab import MODEL_QUEUE
from assistant.ui.empty_states import hint
from assistant.ui.examples import examples_that_run
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors

DEFAULT_TYPES = ", ".join(ner.DEFAULT_ENTITY_TYPES)

TRANSLATIONS = {
    "en": {
        "ner.examples": "Examples (click one to run it)",
        "ner.tab": "Entities",
        "ner.intro": "Find named entities. PER = person, ORG = organization, LOC = location, MISC = other names; "
                     "type any entity types you like.",
        "ner.text": "Text",
        "ner.types": "Entity types (comma-separated)",
        "ner.run": "Find entities",
        "ner.highlighted": "Entities in the text",
        "ner.json": "Entities (JSON, character offsets)",
    },
    "zh": {
        "ner.examples": "示例（点击即可运行）",
        "ner.tab": "命名实体",
        "ner.intro": "识别命名实体。PER = 人名，ORG = 机构，LOC = 地点，MISC = 其他名称；也可以输入任意实体类型。",
        "ner.text": "文本",
        "ner.types": "实体类型（用逗号分隔）",
        "ner.run": "识别实体",
        "ner.highlighted": "文本中的实体",
        "ner.json": "实体（JSON，字符偏移）",
    },
}


@shows_user_errors
def entities_for_ui(loaded: LoadedModel, text: str, entity_types: str) -> tuple[dict, list[dict]]:
    """(HighlightedText value, entity list); bad input becomes ``gr.Error``."""
    entities = ner.extract_entities(loaded, text, entity_types)
    return highlighted_value(text, entities), entities


def highlighted_value(text: str, entities: list[dict]) -> dict:
    """``gr.HighlightedText``'s value for entities with character offsets into ``text``."""
    return {"text": text, "entities": [{"entity": e["type"], "start": e["start"], "end": e["end"]} for e in entities]}


def build_ner_tab(loaded: LoadedModel, adapters=None, picker: gr.Dropdown | None = None) -> None:
    """Lay out the NER tab inside the current ``gr.Blocks``; register ``/ner``.

    ``adapters`` + ``picker``: the session's adapter (generative, or a token-classification head) runs the box.
    """
    gr.Markdown(tr("ner.intro"))
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=tr("ner.text"), lines=5, elem_id="ner-text")
            types = gr.Textbox(label=tr("ner.types"), value=DEFAULT_TYPES, elem_id="ner-types")
            run = gr.Button(tr("ner.run"), variant="primary", elem_id="ner-run")
        with gr.Column():
            highlighted = gr.HighlightedText(label=tr("ner.highlighted"), show_legend=True, elem_id="ner-highlighted")
            hint("ner_highlighted")
            found = gr.JSON(label=tr("ner.json"), elem_id="ner-json")
            hint("ner_json")

    def on_run(text_value, types_value, adapter):
        def with_head(head):
            text_checked = ner.check_text(text_value)
            entities = head_entities(head, text_checked)
            return highlighted_value(text_checked, entities), entities

        return run_with_adapter(adapters, adapter, "ner", lambda: entities_for_ui(loaded, text_value, types_value),
                                with_head)

    for trigger in (run.click, text.submit):
        trigger(on_run, [text, types, *picker_inputs(picker)], [highlighted, found], concurrency_id=MODEL_QUEUE,
                concurrency_limit=1,
                api_visibility="private")
    examples_that_run(examples.NER, [text, types], on_run, [text, types, *picker_inputs(picker)], [highlighted, found],
                      tr("ner.examples"), MODEL_QUEUE, ["Text / 文本", "Types / 类型"])

    @shows_user_errors
    def extract(text: str, entity_types: str = DEFAULT_TYPES) -> list[dict]:
        """Named entities in ``text``: [{"text", "type", "start", "end"}] with text[start:end] == entity text."""
        return ner.extract_entities(loaded, text_arg(text, "text"), text_arg(entity_types, "entity_types"))

    gr.api(extract, api_name="ner", concurrency_id=MODEL_QUEUE, concurrency_limit=1)

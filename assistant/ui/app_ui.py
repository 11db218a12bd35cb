"""Assemble the tabs into one ``gr.Blocks`` app from the services ``app.py`` loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from assistant.chat import Chat
from assistant.served_adapters import ServedAdapters
from assistant.ui import (adapters_panel, chat_feedback, chat_tab, classify_tab, compare_panel, docs_panel, faq_tab,
                          feedback_panel, finetune_labels, model_picker, ner_tab, empty_states, quickstart,
                          translate_tab)
from assistant.ui.adapter_choice import BASE_MODEL_CHOICE, picker_choices
from assistant.ui.adapter_lists import refreshed_picker
from assistant.ui.i18n import build_i18n, tr
from assistant.ui.training_api import register_training_api

if TYPE_CHECKING:  # annotations only: importing these here would load training and retrieval for every UI
    from assistant.agent import Agent
    from assistant.documents.index import DocumentIndex
    from assistant.documents.readers import DocumentLimits
    from assistant.faq.knowledge_base import KnowledgeBase
    from assistant.feedback.ratings import Feedback
    from assistant.model_pool import ModelPool
    from assistant.tasks.faq import FaqRouter
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

TITLE = "LLM Assistant Studio"

TRANSLATIONS = {
    "en": {"app.adapter": "Adapter for Chat and tasks", "app.adapter_info":
           "Trained adapters for the served model; '(base model)' uses no adapter. Per browser session.",
           "app.chat": "Chat", "app.feedback": "Feedback", "app.classify": "Classification", "app.ner": "NER", "app.translate": "Translation"},
    "zh": {"app.adapter": "对话与任务使用的适配器", "app.adapter_info": "为当前模型训练的适配器；“(base model)” 表示不用适配器。每个浏览器会话单独生效。",
           "app.chat": "对话", "app.feedback": "反馈", "app.classify": "文本分类", "app.ner": "命名实体识别", "app.translate": "翻译"},
}


@dataclass
class Services:
    """Everything loaded once at start and shared by all sessions."""

    chat: Chat
    adapters: ServedAdapters | None = None
    faq_kb: KnowledgeBase | None = None
    faq_router: FaqRouter | None = None
    jobs: JobManager | None = None
    store: AdapterStore | None = None
    admin_password: str = ""
    """When set, training and adapter management render only after this password is entered."""
    agent: Agent | None = None
    """Chat's agent mode and the /agent endpoint."""
    documents: DocumentIndex | None = None
    """The operator's shared documents, or None."""
    docs_limits: DocumentLimits | None = None
    """Limits for document uploads (from --max-upload-mb)."""
    pool: ModelPool | None = None
    """The chat models in memory and the list they come from; the model picker switches its default."""
    feedback: Feedback | None = None
    """Ratings of replies (Chat's thumbs, /feedback, /v1/feedback) and the Feedback view."""
    served_reference: str = ""
    """The model reference the server was started with (what "Train on feedback" trains); default: the loaded name."""


def i18n() -> gr.I18n:
    return build_i18n(TRANSLATIONS, chat_tab.TRANSLATIONS, compare_panel.TRANSLATIONS, classify_tab.TRANSLATIONS,
                      ner_tab.TRANSLATIONS,
                      translate_tab.TRANSLATIONS, faq_tab.TRANSLATIONS, docs_panel.TRANSLATIONS, finetune_labels.TRANSLATIONS,
                      adapters_panel.TRANSLATIONS, quickstart.TRANSLATIONS, empty_states.TRANSLATIONS,
                      model_picker.TRANSLATIONS, chat_feedback.TRANSLATIONS, feedback_panel.TRANSLATIONS)


def build_app(services: Services) -> gr.Blocks:
    """The whole UI; call ``.queue().launch(i18n=i18n())`` on the result."""
    chat, adapters = services.chat, services.adapters
    # Uploads and files handed to the browser live in Gradio's cache: swept every 30 min of what is
    # older than 6 h, so a long-running server's disk use stays bounded.
    with gr.Blocks(title=TITLE, delete_cache=(1800, 6 * 3600)) as demo:
        gr.Markdown(f"# {TITLE}\nChat, run NLP tasks and QLoRA fine-tune 4-bit models, offline.")
        picker = models = None
        header = model_picker.build_header(services.pool) if services.pool is not None else None
        unlocked = gr.State(False) if services.admin_password else None
        with gr.Row():
            if services.pool is not None:
                models = model_picker.build_model_picker(services.pool)
            if adapters is not None:
                picker = gr.Dropdown(picker_choices(adapters, heads=True), value=BASE_MODEL_CHOICE,
                                     label=tr("app.adapter"), info=tr("app.adapter_info"), elem_id="adapter-picker",
                                     interactive=True)
        if models is not None:
            model_picker.build_download(services.pool, models, unlocked)
        uploads = docs_panel.session_state() if services.faq_kb is not None else None
        with gr.Tabs(elem_id="main-tabs") as tabs:
            info = _tabs(services, picker, uploads, tabs, unlocked)
        if services.jobs is not None:
            register_training_api(services.jobs, services.admin_password)
        if picker is not None:
            demo.load(lambda current: refreshed_picker(adapters, current), picker, picker, api_visibility="private")
        if models is not None:
            _wire_models(services, chat, models, header, unlocked, picker, info)
            demo.load(lambda: model_picker.current_view(services.pool), None, [models, header],
                      api_visibility="private")
    return demo


def _wire_models(services: Services, chat: Chat, models, header, unlocked, picker, info) -> None:
    """After a switch: the adapter picker lists the new model's adapters, the chat line describes it."""
    others = [info] + ([picker] if picker is not None else [])

    def refresh(_info, *adapter):
        updates = [chat_tab.model_info(chat.loaded)]
        if picker is not None:
            updates.append(refreshed_picker(services.adapters, adapter[0]))
        return updates

    model_picker.wire_model_picker(models, header, services.pool, unlocked, refresh, others)


@dataclass
class Opener:
    """Chat's tab and its compare panel: where a finished "Train on feedback" run opens its adapter."""

    tabs: gr.Tabs
    compare: compare_panel.ComparePanel

    def on_finished(self, finished: gr.State) -> None:
        """When ``finished`` gets an adapter name: the Chat tab, Compare side by side open with it on the right."""
        finished.change(lambda name: (gr.Tabs(selected="chat"), *self.compare.show(name)), finished,
                        [self.tabs, self.compare.accordion, self.compare.right], api_visibility="private")


def _tabs(services: Services, picker, uploads, tabs: gr.Tabs, unlocked) -> gr.Markdown:
    """Every tab, inside ``tabs``; returns Chat's model line (the model picker updates it after a switch)."""
    chat, adapters = services.chat, services.adapters
    with gr.Tab(tr("app.chat"), id="chat"):
        info, compare = chat_tab.build_chat_tab(chat, faq=services.faq_router, adapter_picker=picker, agent=services.agent,
                                      session_docs=uploads, feedback=services.feedback)
    with gr.Tab(tr("app.classify"), id="classify"):
        classify_tab.build_classify_tab(chat.loaded, adapters, picker)
    with gr.Tab(tr("app.ner"), id="ner"):
        ner_tab.build_ner_tab(chat.loaded, adapters, picker)
    with gr.Tab(tr("app.translate"), id="translate"):
        translate_tab.build_translate_tab(chat.loaded, adapters, picker)
    if services.faq_kb is not None:
        with gr.Tab(tr("faq.tab"), id="faq"):
            faq_tab.build_faq_tab(chat.loaded, services.faq_kb)
            docs_panel.build_docs_panel(chat.loaded, services.documents, services.docs_limits, uploads)
    if services.jobs is not None:
        opened = Opener(tabs, compare)
        if services.admin_password:
            _locked_training_tabs(services, picker, unlocked, opened)
        else:
            _training_ui(services, picker, in_tabs=True, opened=opened)
    return info


def _training_ui(services: Services, picker: gr.Dropdown | None, in_tabs: bool, opened: Opener | None = None) -> None:
    """The Fine-tune tab and the adapters panel, as two tabs or (when locked) inside one; the adapter lists
    (picker, panel, the tab's name check) follow the adapter store from one check on the tab's poll."""
    from assistant.ui.finetune_tab import base_choice_list, build_finetune_tab

    bases = _usable_models(services)
    if in_tabs:
        with gr.Tab(tr("finetune.tab"), id="finetune") as finetune_page:
            finetune = build_finetune_tab(services.jobs, services.store, base_choices=bases)
        if bases is not None:  # a model copied into the models folder since the page was built is listed
            finetune_page.select(lambda current: gr.Dropdown(choices=base_choice_list(_usable_models(services)),
                                                             value=current), finetune.base, finetune.base,
                                 api_visibility="private")
        with gr.Tab(tr("adapters.title"), id="adapters") as adapters_page:
            panel = adapters_panel.build_adapters_panel(services.store)
            if services.feedback is not None:
                with gr.Accordion(tr("app.feedback"), open=True, elem_id="feedback-view"):
                    feedback = _feedback_view(services)
                    feedback.refresh_on(adapters_page.select)
                    if opened is not None:
                        opened.on_finished(feedback.finished)
    else:
        finetune = build_finetune_tab(services.jobs, services.store, base_choices=bases)
        with gr.Accordion(tr("adapters.title"), open=True):
            panel = adapters_panel.build_adapters_panel(services.store)
        if services.feedback is not None:
            with gr.Accordion(tr("app.feedback"), open=True, elem_id="feedback-view"):
                feedback = _feedback_view(services)
                if opened is not None:
                    opened.on_finished(feedback.finished)
    finetune.follow_adapters(panel=panel, picker=picker, adapters=services.adapters)


def _usable_models(services: Services) -> list[str] | None:
    """The usable entries of the app's model list (the model picker's list), or None without a pool."""
    return [e.reference for e in services.pool.catalog.entries() if e.usable] if services.pool is not None else None


def _feedback_view(services: Services):
    """Trains the model picked above the tabs when Train is pressed (without a pool: the one served)."""

    def base() -> str:
        if services.pool is not None:
            return services.chat.loaded.reference
        return services.served_reference or services.chat.loaded.name

    return feedback_panel.build_feedback_panel(services.feedback.store, services.jobs, base)


def _locked_training_tabs(services: Services, picker: gr.Dropdown | None, unlocked: gr.State,
                         opened: Opener | None = None) -> None:
    """Fine-tune and adapter management exist (server side) only for sessions that gave the password (which
    also lets them switch the model everyone uses)."""
    from assistant.ui.admin_lock import AdminLock

    lock = AdminLock(services.admin_password)
    with gr.Tab(tr("finetune.tab"), id="finetune"):
        with gr.Row(elem_id="admin-unlock"):
            password = gr.Textbox(label="Operator password", type="password", scale=4, elem_id="admin-password")
            unlock = gr.Button("Unlock training", scale=1, elem_id="admin-unlock-button")
        verdict = gr.Markdown(elem_id="admin-verdict")

        def check(given: str, request: gr.Request):
            client = getattr(getattr(request, "client", None), "host", None) or "unknown"
            ok, message = lock.check(given, client)  # a message, not an exception: no traceback in the log
            return ok, message

        unlock.click(check, password, [unlocked, verdict], api_visibility="private")

        @gr.render(inputs=unlocked)
        def training(is_unlocked: bool):
            if not is_unlocked:
                gr.Markdown("Training, adapter deletion and publishing are locked by the operator of this server.")
                return
            _training_ui(services, picker, in_tabs=False, opened=opened)

"""The Chat tab and the ``/chat`` API endpoint: widgets wired to ``Chat``, nothing more."""

from __future__ import annotations

import threading

import gradio as gr

from assistant.ui import examples
from assistant.ui.user_errors import shows_user_errors
from assistant.arguments import text_arg
from assistant.chat import Chat, GenerationSettings, message_text
from assistant.core.errors import InputError
from assistant.core.loading import human_bytes
from assistant.ui.adapter_choice import picked_adapter, picker_inputs
from assistant.feedback.responses import plain_turns
from assistant.ui.chat_feedback import build_chat_feedback, session_of
from assistant.ui.compare_panel import build_compare_panel
from assistant.ui.empty_states import CHAT_PLACEHOLDER
from assistant.ui.i18n import tr

MODEL_QUEUE = "model"  # every event that runs the model one request at a time shares this concurrency id
CHAT_QUEUE = "chat"
"""Chat replies (the tab, ``/chat``, ``/agent``): as many at once as the engine decodes together (``--parallel``)."""


class StopSwitches:
    """One stop event per browser session, so Stop ends that session's reply only."""

    def __init__(self):
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def fresh(self, session: str) -> threading.Event:
        with self._lock:
            event = self._events[session] = threading.Event()
            return event

    def stop(self, session: str) -> None:
        with self._lock:
            event = self._events.pop(session, None)
        if event is not None:
            event.set()


TRANSLATIONS = {
    "en": {"chat.examples": "Examples (click one to send it)", "chat.agent": "Agent mode: use the studio's tools (translate, sentiment, entities, FAQ, your documents) when a message asks",
           "chat.send": "Send", "chat.stop": "Stop", "chat.clear": "Clear", "chat.use_faq":
           "Answer from the FAQ when it covers the question", "chat.settings": "System prompt and generation settings",
           "chat.system": "System prompt", "chat.temperature": "Temperature (0 = greedy)", "chat.top_p": "Top-p",
           "chat.max_new": "Max new tokens", "chat.repetition": "Repetition penalty"},
    "zh": {"chat.examples": "示例（点击即可发送）", "chat.agent": "智能体模式：消息需要时调用工作室的工具（翻译、情感、实体、FAQ、你的文档）", "chat.send": "发送", "chat.stop": "停止", "chat.clear": "清空", "chat.use_faq": "FAQ 能回答时直接用 FAQ 回答",
           "chat.settings": "系统提示词与生成参数", "chat.system": "系统提示词", "chat.temperature": "温度（0 = 贪心解码）",
           "chat.top_p": "Top-p", "chat.max_new": "最多生成 token 数", "chat.repetition": "重复惩罚"},
}


def step_message(step) -> dict:
    """A tool call as a collapsible chat message (Gradio's message metadata)."""
    arguments = "\n".join(f"- {key}: {value}" for key, value in step.input.items())
    return {"role": "assistant", "content": f"**input**\n{arguments}\n\n**output**\n{step.output}",
            "metadata": {"title": f"Used tool: {step.tool}" + ("" if step.ok else " (failed)"), "status": "done"}}


def model_info(loaded) -> str:
    """The line above the chat: model, engine, device, precision, memory, context, replies decoded at once."""
    at_once = loaded.engine.concurrency
    return (f"**Model** {loaded.name} · **engine** {loaded.engine_name} · **device** {loaded.device}"
            f" · **precision** {loaded.precision}"
            f" · **memory** {human_bytes(loaded.footprint_bytes)} · **context** {loaded.context_window} tokens"
            f" · **replies at once** {at_once}" + ("" if at_once > 1 else " (this engine answers one request at a time)"))


def build_chat_tab(chat: Chat, faq=None, adapter_picker: gr.Dropdown | None = None, agent=None,
                   session_docs: gr.State | None = None, feedback=None):
    """Lay out the Chat tab inside the current ``gr.Blocks`` and wire its events; return the model line
    (``model_info``, for the model picker to update after a switch) and the compare panel (where a finished
    "Train on feedback" run opens its adapter).

    ``session_docs``: the state holding the session's uploads of the Ask tab (the agent searches them).
    ``feedback``: an ``assistant.feedback.ratings.Feedback``; when given, every reply can be rated (thumbs up /
    down, a better answer after a thumbs-down; ``assistant.ui.chat_feedback``) and ``/feedback`` rates by id.

    ``faq``: an ``assistant.tasks.faq.FaqRouter``; when given, a checkbox (on by default) answers messages
    the FAQ covers well from the FAQ, citing the entry, instead of generating. ``/chat`` never routes.
    ``adapter_picker``: a dropdown of adapter names (needs ``chat.adapters``); each reply uses its value.
    """
    stops = StopSwitches()
    loaded = chat.loaded
    at_once = loaded.engine.concurrency

    info = gr.Markdown(model_info(loaded), elem_id="model-info")
    for notice in loaded.notices:
        gr.Markdown(f"> ⚠️ {notice}")
    chatbot = gr.Chatbot(label="Chat", height=440, elem_id="chatbot", buttons=["copy", "copy_all"],
                         placeholder=CHAT_PLACEHOLDER)
    with gr.Row():
        message = gr.Textbox(
            placeholder="Ask anything… / 输入你的问题…", show_label=False, scale=8, elem_id="chat-input",
            max_lines=8,
        )
        send = gr.Button(tr("chat.send"), variant="primary", scale=1, elem_id="chat-send")
        stop = gr.Button(tr("chat.stop"), variant="stop", scale=1, elem_id="chat-stop")
        clear = gr.Button(tr("chat.clear"), scale=1, elem_id="chat-clear")
    if faq is not None:
        use_faq = gr.Checkbox(label=tr("chat.use_faq"), value=True, elem_id="chat-use-faq")
    else:
        use_faq = gr.State(False)
    if agent is not None:
        use_agent = gr.Checkbox(label=tr("chat.agent"), value=True, elem_id="chat-agent")
    else:
        use_agent = gr.State(False)
    with gr.Accordion(tr("chat.settings"), open=False):
        system = gr.Textbox(label=tr("chat.system"), value="You are a helpful assistant.", lines=2)
        with gr.Row():
            temperature = gr.Slider(0, 2, value=0.7, step=0.05, label=tr("chat.temperature"))
            top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label=tr("chat.top_p"))
            max_new_tokens = gr.Slider(1, 1024, value=256, step=1, label=tr("chat.max_new"))
            repetition_penalty = gr.Slider(1.0, 2.0, value=1.1, step=0.05, label=tr("chat.repetition"))

    @shows_user_errors
    def add_user_message(text: str, history: list):
        if not (text or "").strip():
            raise InputError.keyed("chat.empty_message")
        return "", (history or []) + [{"role": "user", "content": text.strip()}]

    @shows_user_errors
    def respond(history, system_prompt, temp, p, max_new, penalty, from_faq, with_agent, adapter, uploads,
                request: gr.Request = None):
        history = history or []
        if not history or history[-1]["role"] != "user":
            return
        prior, last = history[:-1], message_text(history[-1]["content"])
        stop_event = stops.fresh(request.session_hash if request else "")
        adapter = picked_adapter(adapter)
        produced = {"text": "", "source": "chat"}
        try:
            reply, steps = agent.run(last, uploads, adapter) if agent is not None and with_agent else ("", [])
            if steps:
                produced.update(text=reply, source="tool")
                yield history + [*map(step_message, steps), {"role": "assistant", "content": reply}]
                return
            routed = faq.route(last) if faq is not None and from_faq else None
            if routed is not None:
                produced.update(text=routed, source="faq")
                yield history + [{"role": "assistant", "content": routed}]
                return
            settings = GenerationSettings(temp, p, max_new, penalty)
            for text in chat.stream(last, prior, system_prompt, settings, stop_event, adapter=adapter):
                produced["text"] = text
                yield history + [{"role": "assistant", "content": text}]
        finally:  # a stopped reply stays in the chat, so it can be rated too
            if feedback is not None and produced["text"]:
                system = (system_prompt or "").strip()
                system_turn = [{"role": "system", "content": system}] if system else []
                feedback.responses.remember(session_of(request), system_turn + plain_turns(history), produced["text"],
                                            loaded.name, adapter, produced["source"])  # tool steps left out

    def stop_reply(request: gr.Request):
        stops.stop(request.session_hash if request else "")

    inputs = [chatbot, system, temperature, top_p, max_new_tokens, repetition_penalty, use_faq, use_agent,
              *picker_inputs(adapter_picker), session_docs if session_docs is not None else gr.State(None)]
    runs = []
    for trigger in (message.submit, send.click):
        staged = trigger(add_user_message, [message, chatbot], [message, chatbot], api_visibility="private")
        runs.append(staged.success(respond, inputs, chatbot, concurrency_id=CHAT_QUEUE, concurrency_limit=at_once,
                                   api_visibility="private"))
    shown_examples = examples.plain_headers(
        gr.Examples([[text] for text in examples.CHAT], inputs=[message], label=tr("chat.examples")), ["Message / 消息"])
    runs.append(shown_examples.load_input_event.then(add_user_message, [message, chatbot], [message, chatbot],
                                                     api_visibility="private")
                .success(respond, inputs, chatbot, concurrency_id=CHAT_QUEUE, concurrency_limit=at_once,
                         api_visibility="private"))
    stop.click(stop_reply, None, None, cancels=runs, api_visibility="private")
    if feedback is not None:
        build_chat_feedback(chatbot, feedback)
    compare_panel = build_compare_panel(chat, MODEL_QUEUE)
    clear.click(lambda: ([], ""), None, [chatbot, message], api_visibility="private")

    @shows_user_errors
    def chat_api(message: str, system_prompt: str = "", temperature: float = 0.0, max_new_tokens: int = 256,
                 adapter: str = "") -> str:
        """Answer one message (no history) and return the whole reply; ``adapter`` picks a trained adapter."""
        settings = GenerationSettings(temperature=temperature, max_new_tokens=max_new_tokens)
        adapter = text_arg(adapter, "adapter", optional=True)
        return chat.reply(text_arg(message, "message"), [], text_arg(system_prompt, "system_prompt", optional=True),
                          settings, adapter=picked_adapter(adapter))

    gr.api(chat_api, api_name="chat", concurrency_id=CHAT_QUEUE, concurrency_limit=at_once)
    if agent is None:
        return info, compare_panel

    @shows_user_errors
    def agent_api(message: str, adapter: str = "") -> dict:
        """Agent mode on one message: {"reply": str, "steps": [{"tool", "input", "output"}]} (no steps: no tool)."""
        message, adapter = text_arg(message, "message").strip(), text_arg(adapter, "adapter", optional=True)
        if not message:
            raise InputError.keyed("chat.empty_message")
        adapter = picked_adapter(adapter)
        settings = GenerationSettings(temperature=0.0, max_new_tokens=256)
        reply, steps = agent.run(message, adapter=adapter, reply_with_model=lambda text: chat.reply(
            text, [], "", settings, adapter=adapter))
        return {"reply": reply, "steps": [step.to_dict() for step in steps]}

    gr.api(agent_api, api_name="agent", concurrency_id=CHAT_QUEUE, concurrency_limit=at_once)
    return info, compare_panel

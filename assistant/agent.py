"""Agent-style chat: per message, route to a studio tool (translate, classify, NER, FAQ search, document
search over the operator's shared documents and the session's uploads), run it and answer with its
result; otherwise the model answers as in plain chat. The Chat tab, ``/agent`` and the tests all go through
``Agent.run``.

Each tool call is a step ``{"tool", "input", "output"}``; the Chat tab shows it as a collapsible
message, ``/agent`` returns it. A tool that fails (an empty text to translate, say) becomes a step
whose output is the error, and the reply says so: the chat goes on. Tools run on the shared model
with the request's adapter, exactly as their tabs run them.

    agent = Agent(loaded, router, faq_router, DocsRouter(shared_index), adapters=adapters)
    reply, steps = agent.run("Translate 'good morning' into German")
    reply, steps = agent.run("What does my manual say about backups?", uploads_index, "my-adapter")

Tests: ``pytest tests/test_agent.py tests/test_agent_docs.py -q``.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.agent_router import AgentRouter, Route
from assistant.documents.router import DocsRouter, docs_router_for
from assistant.core.errors import UserError
from assistant.core.language import is_chinese
from assistant.tasks import classification, ner, translation


@dataclass
class Step:
    tool: str
    input: dict
    output: str
    ok: bool = True

    def to_dict(self) -> dict:
        return {"tool": self.tool, "input": self.input, "output": self.output}


class Agent:
    def __init__(self, loaded, router: AgentRouter, faq_router=None, docs: DocsRouter | None = None, adapters=None):
        """``docs``: the document-search tool over the operator's shared documents (None: none shared; a
        session's uploads, passed to ``route``/``tool_step``/``run``, still are searched). ``adapters``: the
        ``ServedAdapters`` a request's adapter runs on (None: tools always run on the base model)."""
        self.loaded, self.router, self.faq_router, self.docs = loaded, router, faq_router, docs
        self.adapters = adapters

    def tool_step(self, route: Route, session_docs=None) -> Step:
        """Run the routed tool; a user error (bad input) becomes a failed step, not an exception.
        ``session_docs``: the browser session's uploaded ``DocumentIndex``, searched with the shared one."""
        args = route.arguments
        try:
            output = self._run(route.tool, args, session_docs)
        except UserError as exc:
            return Step(route.tool, args, f"error: {exc}", ok=False)
        return Step(route.tool, args, output)

    def _run(self, tool: str, args: dict, session_docs=None) -> str:
        if tool == "translate":
            return translation.translate(self.loaded, args["text"], translation.AUTO, args["target_lang"])
        if tool == "classify":
            result = classification.classify(self.loaded, args["text"], args["labels"])
            return f"{result['label']} ({result['scores'][result['label']]:.2f})"
        if tool == "ner":
            entities = ner.extract_entities(self.loaded, args["text"], args["entity_types"])
            return "; ".join(f"{e['text']} ({e['type']})" for e in entities) or "(no entities found)"
        if tool == "docs":
            docs = docs_router_for(self.docs, session_docs)
            if docs is None:
                raise UserError("No documents to search: upload yours in the Ask tab first.")
            return docs.route(args["question"])
        routed = self.faq_router.route(args["question"]) if self.faq_router is not None else None
        return routed or "(the FAQ has no answer to this)"

    @staticmethod
    def reply_for(step: Step, message: str) -> str:
        """The assistant's answer built from a step (the 135M model would garble a rephrasing)."""
        zh = is_chinese(message)
        if not step.ok:
            return (f"工具 {step.tool} 没能完成：{step.output[7:]}" if zh else
                    f"The {step.tool} tool could not do that: {step.output[7:]}")
        lead = {"translate": ("Translation", "翻译"), "classify": ("Sentiment", "情感"),
                "ner": ("Entities", "实体"), "faq": (None, None), "docs": (None, None)}[step.tool][1 if zh else 0]
        return f"{lead}: {step.output}" if lead else step.output

    def route(self, message: str, session_docs=None) -> Route:
        return self.router.route(message, docs_router_for(self.docs, session_docs))

    def run(self, message: str, session_docs=None, adapter: str | None = None,
            reply_with_model=None) -> tuple[str, list[Step]]:
        """(reply, steps) for one message; ``reply_with_model(message)`` answers when no tool fits (without it:
        ``("", [])``, so the caller answers itself). ``session_docs``: the session's uploaded ``DocumentIndex``.
        ``adapter``: the request's adapter (None: the base model); the model-run tools (translate, classify,
        NER) run with it active, the FAQ and document search need no model."""
        route = self.route(message, session_docs)
        if route.tool is None:
            return (reply_with_model(message) if reply_with_model else ""), []
        if adapter and self.adapters is not None and route.tool not in ("faq", "docs"):
            with self.adapters.using(adapter):
                step = self.tool_step(route, session_docs)
        else:
            step = self.tool_step(route, session_docs)
        return self.reply_for(step, message), [step]

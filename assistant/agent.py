"""Agent-style chat: per message, route to a studio tool (translate, classify, NER, FAQ search, document
search over the operator's shared documents), run it
and answer with its result; otherwise the model answers as in plain chat.

Each tool call is a step ``{"tool", "input", "output"}``; the Chat tab shows it as a collapsible
message, ``/agent`` returns it. A tool that fails (an empty text to translate, say) becomes a step
whose output is the error, and the reply says so: the chat goes on. Tools run on the shared model
with the request's adapter, exactly as their tabs run them.

    agent = Agent(loaded, router, faq_router)
    reply, steps = agent.run("Translate 'good morning' into German")
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.agent_router import AgentRouter, Route
from assistant.errors import UserError
from assistant.language import is_chinese
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
    def __init__(self, loaded, router: AgentRouter, faq_router=None, documents=None):
        """``documents``: the shared ``DocumentIndex`` the document-search tool answers from (None: no documents)."""
        self.loaded, self.router, self.faq_router = loaded, router, faq_router
        self.documents = documents

    def tool_step(self, route: Route) -> Step:
        """Run the routed tool; a user error (bad input) becomes a failed step, not an exception."""
        args = route.arguments
        try:
            output = self._run(route.tool, args)
        except UserError as exc:
            return Step(route.tool, args, f"error: {exc}", ok=False)
        return Step(route.tool, args, output)

    def _run(self, tool: str, args: dict) -> str:
        if tool == "translate":
            return translation.translate(self.loaded, args["text"], translation.AUTO, args["target_lang"])
        if tool == "classify":
            result = classification.classify(self.loaded, args["text"], args["labels"])
            return f"{result['label']} ({result['scores'][result['label']]:.2f})"
        if tool == "ner":
            entities = ner.extract_entities(self.loaded, args["text"], args["entity_types"])
            return "; ".join(f"{e['text']} ({e['type']})" for e in entities) or "(no entities found)"
        if tool == "docs":
            if self.documents is None:
                raise UserError("No documents are shared on this server: upload yours in the Ask tab instead.")
            from assistant.documents.router import DocsRouter

            return DocsRouter(self.documents).route(args["question"])
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

    def route(self, message: str) -> Route:
        return self.router.route(message)

    def run(self, message: str, reply_with_model=None) -> tuple[str, list[Step]]:
        """(reply, steps) for one message; ``reply_with_model(message)`` answers when no tool fits."""
        route = self.route(message)
        if route.tool is None:
            return (reply_with_model(message) if reply_with_model else ""), []
        step = self.tool_step(route)
        return self.reply_for(step, message), [step]

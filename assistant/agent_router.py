"""Which studio tool a chat message asks for, and with which arguments.

The embedded SmolLM2 has no tool-calling template and is too small to pick tools reliably, so the
agent routes with this router instead: explicit cues in English and Chinese first (regular
expressions: "translate", "翻译", "sentiment", "正面还是负面", "named entities", "人名" ...), then the
FAQ's own retrieval score for questions its knowledge base covers, then MiniLM similarity to each
tool's example requests (English paraphrases the cues miss). Arguments are pulled out of the
message: the quoted text or the text after a colon, the target language named in the message.

    python -m assistant.agent_router "Translate 'good morning' into German"
    python bench/agent_routing.py        # accuracy on the routing set (assistant/data/agent_routing.jsonl)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from assistant.core.language import is_chinese

TOOLS = ("translate", "classify", "ner", "faq", "docs")

CUES = {
    "docs": re.compile(r"\b(in|from|according to|search|check) (my|the|our|your) (shared )?(documents?|docs|files?|manual"
                       r"|notes|pdfs?)\b|(文档|资料|手册|笔记)(里|中|上)|根据(文档|资料|手册|笔记)|查(一下)?(文档|资料|手册)", re.I),
    "translate": re.compile(r"\btranslat\w*|\bhow (do|would) (you|i) say\b|\bin (german|french|spanish|japanese)\b"
                            r"|翻译|译成|译为|翻成|用(英|中|德|法|日|西班牙)(语|文)(怎么)?说", re.I),
    "ner": re.compile(r"\bnamed entit|\bentit(y|ies)\b|\b(names?|list) of (the )?(people|persons|places|"
                      r"organi[sz]ations|companies)|\b(which|what) (people|persons|places|organi[sz]ations|"
                      r"companies) (are|does|do|is)\b|\bextract (the )?(names|people|places|organi)"
                      r"|人名|地名|机构名|组织名|实体|提取.*(名字|名称)", re.I),
    "classify": re.compile(r"\bsentiment\b|\bpositive or negative\b|\bnegative or positive\b|\bclassify\b"
                           r"|\b(is|was) (this|the|that) (review|comment|tweet|feedback|text) (positive|negative"
                           r"|good or bad)|情感|情绪|正面还是负面|负面还是正面|褒义还是贬义|好评还是差评|差评还是好评"
                           r"|分类", re.I),
}
EXAMPLES = {
    "translate": ["Translate this sentence into German.", "How do you say thank you in French?",
                  "Put this text into Chinese for me.", "Can you render this in Spanish?"],
    "classify": ["Is this review positive or negative?", "What is the sentiment of this comment?",
                 "Does this customer sound happy or unhappy?", "Tell me if this tweet is good or bad."],
    "ner": ["Find the people and places mentioned in this text.", "Which organizations appear in this sentence?",
            "List the names in this news item.", "Extract the named entities from this paragraph."],
}
SIMILARITY_THRESHOLD = 0.5
"""Cosine similarity to a tool's example requests needed to pick it without a cue (tuned on the dev split)."""

LANGUAGE_WORDS = {
    "en": r"english|英语|英文", "zh": r"chinese|mandarin|中文|汉语|普通话", "de": r"german|deutsch|德语|德文",
    "fr": r"french|法语|法文", "es": r"spanish|西班牙语|西班牙文", "ja": r"japanese|日语|日文",
}
_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]|'([^']{2,})'|[「『]([^」』]+)[」』]")


@dataclass
class Route:
    tool: str | None
    """One of TOOLS, or None: the model answers as in plain chat."""
    arguments: dict = field(default_factory=dict)
    why: str = ""


def payload(message: str, tool: str) -> str:
    """The text the tool should work on: quoted text, else what follows a colon, else the message minus
    the request around it."""
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(message)]
    if quoted:
        return max(quoted, key=len).strip()
    for colon in (":", "：", "\n"):
        if colon in message:
            head, tail = message.split(colon, 1)
            if tail.strip() and len(head) < 120:
                return tail.strip()
    text = message
    if tool == "translate":
        text = re.sub(r"^(please\s+)?(can you\s+)?translate\s+|\s+(into|to|in)\s+\w+[.?!]?$|[.?!]$", "", text,
                      flags=re.I)
        text = re.sub(r"^(请)?(帮我)?(把)?|(翻译|译)(成|为)?\S{0,4}(语|文)[。？?！!]*$|(用\S+(说|讲))[。？?]*$", "", text)
        text = re.sub(r"^how (do|would) (you|i) say\s+|\s+in \w+\??$", "", text, flags=re.I)
    return text.strip(" \t\"'“”.。") or message.strip()


def target_language(message: str, text: str) -> str:
    """The language the message asks for (the last one named after 'into'/'to'/成), else the other one."""
    named = []
    for code, words in LANGUAGE_WORDS.items():
        for match in re.finditer(words, message, re.I):
            named.append((match.start(), code))
    after = [c for pos, c in sorted(named) if re.search(r"(into|to|in|成|为|用)\s*$", message[:pos], re.I)]
    if after or named:
        return (after or [c for _, c in sorted(named)])[-1]
    return "en" if is_chinese(text) else "zh"


def arguments_for(tool: str, message: str) -> dict:
    if tool in ("faq", "docs"):
        return {"question": message.strip()}
    text = payload(message, tool)
    if tool == "translate":
        return {"text": text, "target_lang": target_language(message, text)}
    if tool == "classify":
        return {"text": text, "labels": "正面, 负面" if is_chinese(message) else "positive, negative"}
    return {"text": text, "entity_types": "PER, ORG, LOC"}


class AgentRouter:
    """``route(message) -> Route``. ``faq_score(message)``: the FAQ's best retrieval score and its threshold."""

    def __init__(self, faq_router=None, encoder=None):
        """``encoder``: a SentenceEncoder, or a function returning one (loaded on first use)."""
        self.faq_router, self._encoder = faq_router, encoder
        self._examples = None

    @property
    def encoder(self):
        if callable(self._encoder) and not hasattr(self._encoder, "encode"):
            self._encoder = self._encoder()
        return self._encoder

    def route(self, message: str, docs=None) -> Route:
        """``docs``: a ``DocsRouter`` over the documents this message may be answered from (None: none)."""
        message = (message or "").strip()
        if not message:
            return Route(None, why="empty message")
        for tool, cue in CUES.items():
            if tool == "docs" and docs is None:
                continue
            if cue.search(message):
                return Route(tool, arguments_for(tool, message), f"the message asks for it ('{cue.search(message)[0]}')")
        if self.faq_router is not None and self.faq_router.covers(message):
            return Route("faq", arguments_for("faq", message), "the FAQ covers this question")
        if docs is not None and docs.covers(message):
            return Route("docs", arguments_for("docs", message), "the documents cover this question")
        tool, score = self._nearest(message)
        if tool is not None and score >= SIMILARITY_THRESHOLD:
            return Route(tool, arguments_for(tool, message), f"close to the {tool} tool's examples ({score:.2f})")
        return Route(None, why="no tool fits: the model answers")

    def _nearest(self, message: str) -> tuple[str | None, float]:
        if self.encoder is None or is_chinese(message):  # MiniLM is an English encoder
            return None, 0.0
        if self._examples is None:
            names = [tool for tool, texts in EXAMPLES.items() for _ in texts]
            self._examples = (names, self.encoder.encode([t for texts in EXAMPLES.values() for t in texts]))
        names, vectors = self._examples
        scores = (vectors @ self.encoder.encode([message])[0]).tolist()
        best = max(range(len(scores)), key=scores.__getitem__)
        return names[best], float(scores[best])


if __name__ == "__main__":
    from assistant.faq.embeddings import default_encoder

    print(AgentRouter(encoder=default_encoder()).route(" ".join(sys.argv[1:]) or "Translate 'good morning' into German"))


TOOL_SPECS = [
    {"type": "function", "function": {"name": "translate", "description": "Translate a text into another language",
                                      "parameters": {"type": "object", "properties": {
                                          "text": {"type": "string"}, "target_lang": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "classify", "description": "The sentiment of a text (positive/negative)",
                                      "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "ner", "description": "Find people, organizations and places in a text",
                                      "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "faq", "description": "Answer a question about LLMs and fine-tuning "
                                      "from the FAQ", "parameters": {"type": "object", "properties": {
                                          "question": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "docs", "description": "Answer a question from the user's uploaded "
                                      "documents or those shared on this server, citing the passages",
                                      "parameters": {"type": "object", "properties": {
                                          "question": {"type": "string"}}}}},
]


def takes_tools(tokenizer) -> bool:
    """Whether the model's chat template renders a ``tools`` list (a model trained to call tools)."""
    return "tools" in (getattr(tokenizer, "chat_template", None) or "")


class NativeToolRouter:
    """For a model whose chat template takes tools: the model picks the tool itself, from the tools rendered
    by its own template, its answer held to valid JSON naming one of them or "none" (llama.cpp grammar).
    The arguments are taken from the message as ``AgentRouter`` does."""

    def __init__(self, loaded):
        self.loaded = loaded

    def route(self, message: str, docs=None) -> Route:
        """``docs``: as ``AgentRouter.route``; without documents the model's "docs" choice means no tool."""
        import json
        import threading

        from assistant.chat import GenerationSettings
        from assistant.core.generation import encode_messages

        message = (message or "").strip()
        if not message:
            return Route(None, why="empty message")
        ids = encode_messages(self.loaded.tokenizer, [{"role": "user", "content": message}], tools=TOOL_SPECS)
        schema = {"type": "object", "properties": {"tool": {"enum": [*TOOLS, "none"]}}, "required": ["tool"]}
        settings = GenerationSettings(temperature=0, max_new_tokens=32, repetition_penalty=1.0, json_schema=schema)
        produced: list[int] = []
        with self.loaded.lock:
            self.loaded.engine.decode(ids, settings, threading.Event(), produced.append)
        try:
            tool = json.loads(self.loaded.tokenizer.decode(produced, skip_special_tokens=True))["tool"]
        except (ValueError, KeyError, TypeError):
            tool = "none"
        if tool not in TOOLS or (tool == "docs" and docs is None):
            return Route(None, why="the model chose no tool")
        return Route(tool, arguments_for(tool, message), "the model chose it (its chat template takes tools)")

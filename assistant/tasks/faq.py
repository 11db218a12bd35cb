"""FAQ question answering: retrieve entries, then answer extractively or have the chat model phrase
an answer grounded only in them; the chat router; the training prompt and the metrics.

The same ``build_messages`` serves the FAQ tab, the ``/faq`` API, chat and fine-tuning
(``training_example``). For training, the row's own answer is the single context entry: the model
learns to answer from the context it is given (serving retrieves the context first), training needs
neither the encoder nor a knowledge base, and rows need not be in any FAQ. Serving with several
retrieved entries puts the best match first, so the format matches what training teaches.

    python -m assistant.tasks.faq "how do I stop my model from overfitting?"          # extractive
    python -m assistant.tasks.faq --model "how do I stop my model from overfitting?"  # phrased by SmolLM2
"""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from collections.abc import Sequence

from assistant.core.errors import InputError
from assistant.faq.knowledge_base import FaqEntry, FaqText, KnowledgeBase, load_builtin
from assistant.faq.retrieval import Match, RetrievalSettings, get_index, tokenize
from assistant.core.language import HAN_CHARS, chinese_or_english
from assistant.core.loading import LoadedModel
from assistant.core.generation import check_fits, encode_messages, generate, repeats_a_line

TASK_NAME = "faq"
PROMPT_VERSION = "1"
MAX_NEW_TOKENS = 200
MAX_QUESTION_CHARS = 2000
CONTEXT_SCORE_RATIO = 0.75
"""With use_model, entries scoring below this share of the best score are left out of the prompt: a small
model copies from whatever it is shown, so a weaker neighbour only adds noise."""
GROUNDING_MIN = 0.7
"""With use_model, the share of the reply's BM25 terms that must occur in the question or the entries given;
below it the reply is treated as made up and the FAQ answer is shown as written (with a note)."""
STRAYED_NOTE = {
    "en": "(The model's wording strayed from the FAQ, so the FAQ answer is shown as written.)",
    "zh": "（模型的表述偏离了常见问题库的内容，因此直接显示库中的原答案。）",
}

SYSTEM_PROMPT = (
    "You answer questions using only the FAQ entries given to you. If the entries do not answer the "
    "question, say that the FAQ does not cover it. Do not add facts that are not in the entries. "
    "Reply in the language of the question, in a few sentences."
)
NOT_COVERED = {
    "en": "The FAQ does not cover this question, so I will not guess an answer. Try rephrasing it, or ask in Chat.",
    "zh": "常见问题库没有涵盖这个问题，所以我不会凭空编造答案。请换个说法再问，或到“聊天”页提问。",
}
SOURCES_LABEL = {"en": "Sources", "zh": "来源"}


def not_covered_message(lang: str) -> str:
    """Both languages, the question's language first."""
    first = "zh" if lang == "zh" else "en"
    return f"{NOT_COVERED[first]}\n\n{NOT_COVERED['en' if first == 'zh' else 'zh']}"


def check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InputError.keyed("faq.empty_question")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError.keyed("faq.question_too_long", count=len(question), limit=MAX_QUESTION_CHARS)
    return question


def build_messages(question: str, entries: Sequence[FaqEntry]) -> list[dict]:
    """System + user messages: the entries (in the question's language when they have it), then the question.

    Entries are numbered plain text, not "Q:/A:" pairs, which a small model tends to continue.
    """
    lang = chinese_or_english(question)
    blocks = []
    for number, entry in enumerate(entries, start=1):
        text = entry.in_language(lang)
        blocks.append(f"FAQ entry {number} ({entry.id}): {text.question}\n{text.answer}")
    user = "\n\n".join(blocks) + f"\n\nUsing only the FAQ text above, answer this question: {question.strip()}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def training_example(row: dict) -> tuple[list[dict], str]:
    """(prompt messages, target answer) from a canonical row {"question", "answer"} (optional "id")."""
    question, answer = str(row.get("question") or "").strip(), str(row.get("answer") or "").strip()
    if not question or not answer:
        raise InputError(f"FAQ training rows need a non-empty 'question' and 'answer'; got keys {sorted(row)}.")
    entry = FaqEntry(str(row.get("id") or "faq"), (FaqText(chinese_or_english(question), question, answer),))
    return build_messages(question, [entry]), answer


def retrieve(question: str, kb: KnowledgeBase, settings: RetrievalSettings | None = None) -> list[Match]:
    """The top-k matches at or above the threshold (empty: the FAQ does not cover the question)."""
    settings = settings or RetrievalSettings()
    question = check_question(question)
    matches = get_index(kb, settings).search(question, settings.top_k)
    return [m for m in matches if m.score >= settings.threshold_for(chinese_or_english(question))]


def sources(matches: Sequence[Match], lang: str) -> list[dict]:
    return [{"id": m.entry.id, "question": m.entry.in_language(lang).question, "score": round(m.score, 3)}
            for m in matches]


def answer_done(text: str) -> bool:
    """Stop generating at the end of the first paragraph, or when the model starts repeating itself."""
    stripped = text.strip()
    return ("\n\n" in stripped) or repeats_a_line(text) or _loop_start(stripped) is not None


def _loop_start(text: str, span: int = 12, times: int = 3) -> int | None:
    """Where a greedy loop begins: the second occurrence of the first ``span``-character piece of text
    that occurs ``times`` times. None when nothing repeats that often."""
    for start in range(max(len(text) - span, 0)):
        piece = text[start:start + span]
        if text.count(piece) >= times:
            return text.find(piece, start + 1)
    return None


def clean_model_answer(text: str) -> str:
    """The first paragraph, cut before any repetition loop, without an echoed "A:"/"Answer:" label."""
    text = text.strip().split("\n\n")[0]
    if (loop := _loop_start(text)) is not None:
        text = text[:loop]
        sentence_end = max(text.rfind(mark) for mark in (". ", "。", "！", "？", "! ", "? "))
        text = text[:sentence_end + 1] if sentence_end > 0 else text
    return re.sub(r"^\s*(A|Answer|答|答案)\s*[:：]\s*", "", text, flags=re.IGNORECASE).strip()


def parse_output(text: str) -> str:
    """The answer in a model's raw reply (what ``clean_model_answer`` keeps)."""
    return clean_model_answer(text)


def phrase_with_model(loaded: LoadedModel, question: str, entries: Sequence, build=None) -> str:
    """The model's answer grounded in ``entries`` (best first); drops the weakest if the prompt is too long.
    ``build(question, entries)``: the chat messages (default: this module's ``build_messages`` for FAQ
    entries; the documents pass theirs for passages)."""
    build = build or build_messages
    entries = list(entries)
    while len(entries) > 1 and len(encode_messages(loaded.tokenizer, build(question, entries))) \
            > loaded.context_window - MAX_NEW_TOKENS:
        entries.pop()
    messages = build(question, entries)
    check_fits(loaded, len(encode_messages(loaded.tokenizer, messages)), MAX_NEW_TOKENS)
    return clean_model_answer(generate(loaded, messages, MAX_NEW_TOKENS, stop=answer_done))


def answer(question: str, kb: KnowledgeBase, loaded: LoadedModel | None = None, use_model: bool = False,
           settings: RetrievalSettings | None = None) -> dict:
    """{"answer": str, "sources": [{"id", "question", "score"}]}: the best entry's answer in the question's
    language, or (use_model) the model's answer from the retrieved entries; 'not covered' below the threshold.

    ``sources`` lists the retrieved entries at or above the threshold, best first (the extractive answer is
    the first one's; with use_model, those given to the model); it is empty when the FAQ does not cover it.
    """
    question = check_question(question)
    lang = chinese_or_english(question)
    matches = retrieve(question, kb, settings)
    if not matches:
        return {"answer": not_covered_message(lang), "sources": []}
    text = matches[0].entry.in_language(lang).answer
    if use_model:
        if loaded is None:
            raise InputError("'Phrase with the model' needs a loaded chat model; none was given.")
        matches = [m for m in matches if m.score >= CONTEXT_SCORE_RATIO * matches[0].score]
        entries = [m.entry for m in matches]
        phrased = phrase_with_model(loaded, question, entries)
        if grounded_share(phrased, question, entries) >= GROUNDING_MIN and len(phrased) >= 20:
            text = phrased
        else:  # empty, broken off or made up: show the entry itself
            text = f"{text}\n\n{STRAYED_NOTE[lang]}"
    return {"answer": text, "sources": sources(matches, lang)}


def grounded_share(reply: str, question: str, entries: Sequence[FaqEntry]) -> float:
    """Share of the reply's terms (English words without stop words, Chinese characters and bigrams) that
    occur in the question or in the entries: a cheap check that the model did not add its own facts."""
    terms = tokenize(reply)
    if not terms:
        return 0.0
    known = set(tokenize(question))
    for entry in entries:
        for text in entry.texts:
            known.update(tokenize(f"{text.question} {text.answer}"))
    return sum(term in known for term in terms) / len(terms)


class FaqRouter:
    """Chat routing: answers a chat message from the FAQ only when the best entry scores at or above
    ``settings.route_threshold`` (stricter than the FAQ tab's threshold); otherwise the model chats."""

    def __init__(self, kb: KnowledgeBase, settings: RetrievalSettings | None = None):
        self.kb, self.settings = kb, settings or RetrievalSettings()

    def warm(self) -> threading.Thread:
        """Embed the knowledge base in the background, so the first chat message does not wait for it."""
        thread = threading.Thread(target=get_index, args=(self.kb, self.settings), name="faq-index", daemon=True)
        thread.start()
        return thread

    def _best(self, message: str, kb: KnowledgeBase | None):
        """The best entry for ``message`` when it scores at or above the route threshold, else None."""
        message = (message or "").strip()
        if not message or len(message) > MAX_QUESTION_CHARS:
            return None
        matches = get_index(kb or self.kb, self.settings).search(message, 1)
        return matches[0] if matches and matches[0].score >= self.settings.route_threshold else None

    def covers(self, message: str, kb: KnowledgeBase | None = None) -> bool:
        """Whether the FAQ answers ``message`` well enough for chat to use it (``route`` would answer)."""
        return self._best(message, kb) is not None

    def route(self, message: str, kb: KnowledgeBase | None = None) -> str | None:
        """The FAQ answer with its source cited ("...\\n\\nSources: faq-025 (0.57)"), or None."""
        best = self._best(message, kb)
        if best is None:
            return None
        lang = chinese_or_english(message.strip())
        return f"{best.entry.in_language(lang).answer}\n\n{SOURCES_LABEL[lang]}: {best.entry.id} ({best.score:.2f})"


def _normalise_tokens(text: str) -> list[str]:
    """Lowercase words without punctuation; Chinese counted character by character (no segmenter)."""
    text = re.sub(r"\b(a|an|the)\b", " ", (text or "").lower())
    return re.findall(f"[{HAN_CHARS}]|[a-z0-9]+", text)


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _normalise_tokens(prediction), _normalise_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def evaluate(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """exact_match (after normalisation), token_f1 (SQuAD-style; Chinese by character) and hit_rate: the
    share of predictions with token-F1 >= 0.5, a lenient 'gave the answer' rate. All in [0, 1]."""
    if len(predictions) != len(references):
        raise InputError(f"{len(predictions)} predictions but {len(references)} references: they must pair up.")
    if not references:
        raise InputError("Nothing to evaluate: no predictions were given.")
    f1s = [token_f1(p, r) for p, r in zip(predictions, references)]
    exact = [_normalise_tokens(p) == _normalise_tokens(r) for p, r in zip(predictions, references)]
    return {
        "exact_match": sum(exact) / len(f1s),
        "token_f1": sum(f1s) / len(f1s),
        "hit_rate": sum(f >= 0.5 for f in f1s) / len(f1s),
        "count": len(f1s),
    }


if __name__ == "__main__":
    use_model = "--model" in sys.argv
    asked = " ".join(a for a in sys.argv[1:] if a != "--model") or "how do I stop my model from overfitting?"
    model = None
    if use_model:
        from assistant.core.loading import load_causal_lm

        model = load_causal_lm("smollm2-135m-instruct")
    result = answer(asked, load_builtin(), model, use_model)
    print(result["answer"])
    for source in result["sources"]:
        print(f"  {source['id']} ({source['score']:.2f}) {source['question']}")

"""Translation: languages, source-language detection, the prompt, output cleaning and
sacrebleu metrics. Multi-line input is translated line by line; empty lines stay empty.

    python -m assistant.tasks translate --input lines.txt --source-lang auto --target-lang de --output out.txt
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.errors import InputError
from assistant.core.language import LATIN, is_chinese
from assistant.core.loading import LoadedModel
from assistant.core.generation import Progress, ends_first_line, generate_batch, stuck_in_a_loop

TASK_NAME = "translation"
PROMPT_VERSION = "1"

LANGUAGES = {"en": "English", "zh": "Chinese", "de": "German", "fr": "French", "es": "Spanish", "ja": "Japanese"}
AUTO = "auto"
MAX_TEXT_CHARS = 20_000
MAX_LINES = 500

_NAMES = {**{name.lower(): code for code, name in LANGUAGES.items()},
          "中文": "zh", "汉语": "zh", "英语": "en", "德语": "de", "法语": "fr", "西班牙语": "es", "日语": "ja",
          "deutsch": "de", "français": "fr", "español": "es", "日本語": "ja", "zh-cn": "zh", "zh-hans": "zh"}
_STOPWORDS = {
    "en": "the a an and is are was were of to in it you i that this with for on have be not my we what he she they do",
    "de": "der die das und ist nicht ich du sie ein eine mit auf zu den dem des im es wir sind auch von für was wie",
    "fr": "le la les et est un une des du de je tu il elle nous vous pas que qui dans pour sur avec ce au sont ne",
    "es": "el la los las y es un una de que en no por para con se del al yo está son lo como pero muy",
}
_STOPWORDS = {code: set(words.split()) for code, words in _STOPWORDS.items()}
_HINTS = {"de": "äöüß", "fr": "çœèêàâîôûëï", "es": "ñ¿¡áíóú"}
_KANA = re.compile("[\u3040-\u30ff]")


def language_code(value: str, allow_auto: bool = False) -> str:
    """A language code from a code or a name ("de", "German", "德语"); InputError listing the valid codes."""
    key = (value or "").strip().lower()
    if key in LANGUAGES or (allow_auto and key == AUTO):
        return key
    if key in _NAMES:
        return _NAMES[key]
    valid = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
    extra = f", or {AUTO} to detect the source language" if allow_auto else ""
    raise InputError.keyed("translate.unknown_language", value=value, codes=valid + extra)


def detect_language(text: str) -> str:
    """Guess the language of ``text`` from its script and common words.

    Kana means Japanese; otherwise Han characters that are at least a quarter of the letters mean
    Chinese; otherwise Latin-script text is scored by stopwords (en/de/fr/es) plus letters typical
    of a language (ß, ñ, ç ...), and English wins ties. Limits: Japanese written only in kanji reads
    as Chinese; a few words without stopwords read as English; a Latin-script language outside the
    list (Italian, Dutch ...) is reported as the closest listed one; scripts with no listed
    language (Cyrillic, Hangul ...) raise InputError asking the user to pick the source.
    """
    if _KANA.search(text):
        return "ja"
    if is_chinese(text):
        return "zh"
    if not LATIN.search(text):
        raise InputError.keyed("translate.cannot_detect")
    lowered = text.lower()
    words = re.findall(r"[a-z\u00c0-\u024f]+", lowered)
    scores = {code: sum(word in stopwords for word in words) for code, stopwords in _STOPWORDS.items()}
    for code, letters in _HINTS.items():
        scores[code] += 2 * sum(lowered.count(letter) for letter in letters)
    best = max(scores.values())
    return "en" if scores["en"] == best else max(scores, key=scores.get)


def check_text(text: str) -> str:
    """The text with \\r\\n as \\n; InputError if blank or over the size limits."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InputError.keyed("translate.empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError.keyed("translate.text_too_long", count=len(text), limit=MAX_TEXT_CHARS)
    lines = text.count("\n") + 1
    if lines > MAX_LINES:
        raise InputError.keyed("translate.too_many_lines", count=lines, limit=MAX_LINES)
    return text


def resolve_languages(text: str, source_lang: str, target_lang: str) -> tuple[str, str]:
    """(source, target) codes; ``auto`` source is detected from ``text``."""
    source, target = language_code(source_lang, allow_auto=True), language_code(target_lang)
    return (detect_language(text) if source == AUTO else source), target


def build_messages(text: str, source_lang: str, target_lang: str) -> list[dict]:
    """System + user messages asking to translate one line ``text`` (source may be ``auto``)."""
    source, target = language_code(source_lang, allow_auto=True), language_code(target_lang)
    origin = "" if source == AUTO else f" from {LANGUAGES[source]}"
    system = (f"You are a professional translator. Translate the user's text into {LANGUAGES[target]}. "
              "Reply with the translation only, without notes or explanations.")
    user = f"Translate{origin} into {LANGUAGES[target]}:\n{text.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def training_example(row: dict, source_lang: str = AUTO, target_lang: str = "en") -> tuple[list[dict], str]:
    """(prompt messages, target text) from a row {"source", "target"}; ``auto`` detects per row."""
    source_text, target_text = str(row.get("source", "")).strip(), str(row.get("target", "")).strip()
    if not source_text or not target_text:
        raise InputError("A translation row needs non-empty 'source' and 'target' texts.")
    source, target = resolve_languages(source_text, source_lang, target_lang)
    return build_messages(source_text, source, target), target_text


_PREFIX = re.compile(r"^(?:(?:here is|here's|sure[,!.]?)[^:：]{0,40}[:：]|[\w ]{0,20}translation[\w ]{0,20}[:：]|"
                     r"(?:english|chinese|german|french|spanish|japanese|deutsch|中文|译文|翻译)\s*[:：])\s*", re.I)
_QUOTES = {'"': '"', "“": "”", "「": "」", "'": "'", "«": "»", "„": "“"}


def parse_output(output: str) -> str:
    """The translation in an answer: its first non-empty line, without a "Translation:" style
    prefix or quotes around the whole line."""
    line = next((line.strip() for line in (output or "").splitlines() if line.strip()), "")
    line = _PREFIX.sub("", line, count=1).strip()
    if len(line) >= 2 and _QUOTES.get(line[0]) == line[-1]:
        line = line[1:-1].strip()
    return line


def evaluate(predictions: Sequence[str], references: Sequence[str], target_lang: str = "en") -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu). BLEU tokenizes Chinese with ``zh``, Japanese by character
    (``ja-mecab`` needs MeCab) and the rest with ``13a``."""
    import sacrebleu

    if len(predictions) != len(references):
        raise InputError(f"{len(predictions)} translations but {len(references)} references: they must pair up.")
    if not references:
        raise InputError("Nothing to evaluate: the reference list is empty.")
    tokenize = {"zh": "zh", "ja": "char"}.get(language_code(target_lang), "13a")
    bleu = sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(list(predictions), [list(references)])
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}


def _answer_done(text: str) -> bool:
    return ends_first_line(text) or stuck_in_a_loop(text)


def translate_lines(loaded: LoadedModel, lines: Sequence[str], source_lang: str, target_lang: str,
                    batch_size: int = 8, progress: Progress | None = None) -> list[str]:
    """One translation per line, in order; blank lines come back empty and cost nothing.
    ``auto`` detects the language once from all lines together. Same source and target: unchanged."""
    lines = [line.strip() for line in lines]
    todo = [i for i, line in enumerate(lines) if line]
    if not todo:
        raise InputError.keyed("translate.empty_text")
    source, target = resolve_languages("\n".join(lines), source_lang, target_lang)
    if source == target:
        return list(lines)
    tokenizer = loaded.tokenizer
    longest = max(len(tokenizer.encode(lines[i], add_special_tokens=False)) for i in todo)
    answers = generate_batch(loaded, [build_messages(lines[i], source, target) for i in todo],
                             min(512, 16 + 3 * longest), stop=_answer_done, batch_size=batch_size,
                             progress=progress)
    result = [""] * len(lines)
    for index, answer in zip(todo, answers):
        result[index] = parse_output(answer)
    return result


def translate(loaded: LoadedModel, text: str, source_lang: str = AUTO, target_lang: str = "en") -> str:
    """The translation of ``text``, line by line (empty lines kept)."""
    return "\n".join(translate_lines(loaded, check_text(text).split("\n"), source_lang, target_lang))

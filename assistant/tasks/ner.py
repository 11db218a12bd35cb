"""Named-entity recognition: the prompt, the output parser (with exact character offsets),
IOB2 conversions for token data and the seqeval metric.

Model output format: one entity per line, ``TYPE: entity text``, in order of appearance, or the
single word ``none``. A line format is shorter than JSON (fewer tokens to learn and generate),
has nothing to escape, and a truncated or partly wrong answer still parses line by line, which
suits a small model. The parser maps each entity back to the input (``text[start:end] == entity``
always holds) and drops entities it cannot find or whose type was not asked for.

    python -m assistant.tasks ner --input sentences.txt --entity-types "PER, ORG, LOC" --output out.jsonl
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.errors import InputError
from assistant.core.language import HAN_CHARS
from assistant.core.loading import LoadedModel
from assistant.core.generation import Progress, generate_batch, repeats_a_line, stuck_in_a_loop

TASK_NAME = "ner"
PROMPT_VERSION = "2"  # 2: the example moved from the system message to a chat turn

DEFAULT_ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
TYPE_DESCRIPTIONS = {"PER": "person", "ORG": "organization", "LOC": "location",
                     "MISC": "other name: nationality, event, product, work, language"}
TYPE_ALIASES = {"person": "PER", "organization": "ORG", "organisation": "ORG", "location": "LOC"}
MAX_ENTITY_TYPES = 20
MAX_TEXT_CHARS = 5_000
NO_ENTITIES = "none"
EXAMPLE_TEXT = "Angela Merkel met Tim Cook of Apple in Paris."
EXAMPLE_ENTITIES = [("PER", "Angela Merkel"), ("PER", "Tim Cook"), ("ORG", "Apple"), ("LOC", "Paris")]

_CJK = re.compile(f"[\u3000-\u303f\u3040-\u30ff{HAN_CHARS}\uff00-\uffef]")  # no spaces between words
_LINE = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?([^:：\n]{1,40}?)\s*[:：]\s*(.+?)\s*$")


def parse_entity_types(types: str | Sequence[str] | None) -> list[str]:
    """Entity types from "PER, ORG" (ASCII or Chinese commas) or a list; default PER, ORG, LOC, MISC."""
    if types is None or (isinstance(types, str) and not types.strip()):
        return list(DEFAULT_ENTITY_TYPES)
    if isinstance(types, str):
        types = re.split(r"[,，]", types)
    cleaned = [str(t).strip() for t in types if str(t).strip()]
    if len(cleaned) > MAX_ENTITY_TYPES:
        raise InputError.keyed("ner.too_many_types", count=len(cleaned), limit=MAX_ENTITY_TYPES)
    seen = set()
    for name in cleaned:
        if len(name) > 40 or re.search(r"[:：\n]", name):
            raise InputError.keyed("ner.type_not_usable", name=name[:40])
        if name.casefold() in seen:
            raise InputError.keyed("ner.type_listed_twice", name=name)
        seen.add(name.casefold())
    return cleaned


def check_text(text: str) -> str:
    """The text unchanged (offsets refer to it); InputError if blank or too long."""
    if not (text or "").strip():
        raise InputError.keyed("ner.empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError.keyed("ner.text_too_long", count=len(text), limit=MAX_TEXT_CHARS)
    return text


def build_messages(text: str, entity_types: Sequence[str]) -> list[dict]:
    """Chat messages asking for the entities of ``entity_types`` in ``text``: the system message,
    a one-shot demonstration as a user/assistant turn (its lines limited to the requested types;
    left out when none of PER/ORG/LOC is requested), then the user's text.

    The demonstration is a real chat turn, not text inside the system message: on a CoNLL probe
    SmolLM2-135M followed the line format after a turn but not from the same example in the system
    message (it echoed the text instead; bench/README.md, "Zero-shot task quality").
    """
    listed = "\n".join(f"- {t}" + (f" ({TYPE_DESCRIPTIONS[t.upper()]})" if t.upper() in TYPE_DESCRIPTIONS else "")
                       for t in entity_types)
    system = ("You are a named entity recognizer. Entity types:\n" + listed + "\n"
              "Answer format: one entity per line, TYPE: entity, copying each entity exactly from the text, "
              f"in order of appearance. If there is no entity, answer: {NO_ENTITIES}")
    messages = [{"role": "system", "content": system}]
    wanted = {t.upper(): t for t in entity_types}
    example = [f"{wanted[kind]}: {name}" for kind, name in EXAMPLE_ENTITIES if kind in wanted]
    if example:
        messages += [{"role": "user", "content": f"Text: {EXAMPLE_TEXT}"},
                     {"role": "assistant", "content": "\n".join(example)}]
    return messages + [{"role": "user", "content": f"Text: {text}"}]


def format_entities(entities: Sequence[dict]) -> str:
    """The model output format for these entities (the fine-tuning target)."""
    return "\n".join(f"{e['type']}: {e['text']}" for e in entities) or NO_ENTITIES


# --- parsing: answer lines -> entities with exact offsets ----------------------------------

def _is_word_char(char: str) -> bool:
    return char.isalnum() and not _CJK.match(char)


def _on_boundaries(text: str, start: int, end: int) -> bool:
    """False when the match cuts a word (e.g. 'Paris' inside 'Parisian'); CJK has no word gaps."""
    cuts_left = start > 0 and _is_word_char(text[start - 1]) and _is_word_char(text[start])
    cuts_right = end < len(text) and _is_word_char(text[end - 1]) and _is_word_char(text[end])
    return not (cuts_left or cuts_right)


def _best_span(text: str, surface: str, taken: list[tuple[int, int]], cursor: int) -> tuple[int, int] | None:
    """Where ``surface`` occurs: case-exact before case-insensitive, whole words before partial,
    at/after the cursor (left to right) before earlier, then leftmost; never overlapping ``taken``."""
    pattern = r"\s+".join(re.escape(part) for part in surface.split())
    if not pattern:
        return None
    best = None
    for case_rank, flags in ((0, 0), (1, re.IGNORECASE)):
        for match in re.finditer(pattern, text, flags):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            key = (case_rank, not _on_boundaries(text, start, end), start < cursor, start)
            if best is None or key < best[0]:
                best = (key, (start, end))
        if best is not None:
            break
    return best[1] if best else None


def locate_entities(text: str, found: Sequence[tuple[str, str]]) -> list[dict]:
    """Entities {"text","type","start","end"} for (type, surface) pairs, sorted by start.

    Searched left to right: each pair is looked for after the previous one first, so a name
    listed twice maps to its first and second occurrences; a pair with no free occurrence
    (not in the text, or already used) is dropped. ``text[start:end] == entity["text"]``.
    """
    taken: list[tuple[int, int]] = []
    entities, cursor = [], 0
    queue, position = list(found), 0
    while position < len(queue):
        kind, surface = queue[position]
        position += 1
        trimmed = surface.strip().strip("\"'`“”‘’「」*").rstrip(",;。，；").strip()
        span = _best_span(text, surface.strip(), taken, cursor) or _best_span(text, trimmed, taken, cursor)
        if span is None:
            parts = [part for part in re.split(r"[,，、]", trimmed) if part.strip()]
            if len(parts) > 1:  # "PER: John, Mary" on one line: look for each name in turn
                queue[position:position] = [(kind, part) for part in parts]
            continue
        taken.append(span)
        cursor = span[1]
        entities.append({"text": text[span[0]:span[1]], "type": kind, "start": span[0], "end": span[1]})
    return sorted(entities, key=lambda e: e["start"])


def parse_output(output: str, text: str, entity_types: Sequence[str]) -> list[dict]:
    """Entities from a model answer in the ``TYPE: text`` line format, with offsets into ``text``."""
    wanted = {t.casefold(): t for t in entity_types}
    for alias, short in TYPE_ALIASES.items():
        if short.casefold() in wanted:
            wanted.setdefault(alias, wanted[short.casefold()])
    found = []
    for line in (output or "").splitlines():
        match = _LINE.match(line)
        if match and match.group(1).strip().casefold() in wanted:
            found.append((wanted[match.group(1).strip().casefold()], match.group(2)))
    return locate_entities(text, found)


# --- token data (CoNLL, character-level Chinese) <-> text and entities ----------------------

def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """(text, each token's (start, end)). Tokens are joined by spaces, except between two CJK
    characters; character-level Chinese data (all one-character tokens, some CJK) joins with none."""
    if any(not token for token in tokens):
        raise InputError("A token is empty: every token needs at least one character.")
    char_level = all(len(t) == 1 for t in tokens) and any(_CJK.match(t) for t in tokens)
    text, spans = "", []
    for index, token in enumerate(tokens):
        if index and not char_level and not (_CJK.match(tokens[index - 1][-1]) and _CJK.match(token[0])):
            text += " "
        spans.append((len(text), len(text) + len(token)))
        text += token
    return text, spans


def entities_from_tags(tokens: Sequence[str], tags: Sequence[str]) -> list[dict]:
    """Entities (with offsets into ``join_tokens(tokens)``) from IOB2 tags. Also reads BIOES/BMES;
    an I- tag that does not continue an entity of its type starts a new one (as seqeval does)."""
    if len(tokens) != len(tags):
        raise InputError(f"{len(tokens)} tokens but {len(tags)} tags: every token needs exactly one tag.")
    text, spans = join_tokens(tokens)
    entities: list[dict] = []
    current = None  # [type, first token, last token]
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if tag == "O" or not kind:
            current = None
            continue
        if prefix in ("B", "S") or current is None or current[0] != kind:
            current = [kind, index, index]
            entities.append(current)
        else:
            current[2] = index
        if prefix in ("E", "S"):
            current = None
    return [{"text": text[spans[a][0]:spans[b][1]], "type": kind, "start": spans[a][0], "end": spans[b][1]}
            for kind, a, b in entities]


def tags_from_entities(tokens: Sequence[str], entities: Sequence[dict]) -> list[str]:
    """IOB2 tags for ``tokens`` from entities with offsets into ``join_tokens(tokens)``: every token
    overlapping an entity gets its type (B- first, I- after); an entity overlapping one already
    tagged is skipped."""
    _, spans = join_tokens(tokens)
    tags = ["O"] * len(tokens)
    for entity in sorted(entities, key=lambda e: e["start"]):
        inside = [i for i, (start, end) in enumerate(spans) if start < entity["end"] and entity["start"] < end]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        for position, i in enumerate(inside):
            tags[i] = ("B-" if position == 0 else "I-") + entity["type"]
    return tags


def training_example(row: dict, entity_types: Sequence[str] | str | None = None) -> tuple[list[dict], str]:
    """(prompt messages, target answer) from a row {"tokens": [...], "tags": [... IOB2 ...]}."""
    types = parse_entity_types(entity_types)
    tokens, tags = list(row.get("tokens") or []), list(row.get("tags") or [])
    if not tokens:
        raise InputError("The row has no tokens: each NER row needs 'tokens' and 'tags' lists of equal length.")
    entities = entities_from_tags(tokens, tags)
    unknown = sorted({e["type"] for e in entities} - set(types))
    if unknown:
        raise InputError(f"The row has entity types {', '.join(unknown)} that are not in the entity types "
                         f"({', '.join(types)}). Add them to the entity types or fix the tags.")
    text, _ = join_tokens(tokens)
    return build_messages(text, types), format_entities(entities)


def evaluate(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval entity-level scores from IOB2 tag sequences: precision, recall, f1 overall
    (micro average) and ``<TYPE>_precision`` / ``_recall`` / ``_f1`` / ``_support`` per type."""
    from seqeval.metrics import classification_report

    if len(predictions) != len(references):
        raise InputError(f"{len(predictions)} predicted sentences but {len(references)} references.")
    for index, (pred, gold) in enumerate(zip(predictions, references)):
        if len(pred) != len(gold):
            raise InputError(f"Sentence {index}: {len(pred)} predicted tags but {len(gold)} reference tags.")
    report = classification_report([list(r) for r in references], [list(p) for p in predictions],
                                   output_dict=True, zero_division=0)
    overall = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    scores = {"precision": float(overall["precision"]), "recall": float(overall["recall"]),
              "f1": float(overall["f1-score"])}
    for kind, values in report.items():
        if kind not in ("micro avg", "macro avg", "weighted avg"):
            scores.update({f"{kind}_precision": float(values["precision"]), f"{kind}_recall": float(values["recall"]),
                           f"{kind}_f1": float(values["f1-score"]), f"{kind}_support": float(values["support"])})
    return scores


# --- running the model -----------------------------------------------------------------------

def _answer_done(text: str) -> bool:
    return repeats_a_line(text) or stuck_in_a_loop(text)


def _answer_budget(loaded: LoadedModel, texts: Sequence[str]) -> int:
    longest = max(len(loaded.tokenizer.encode(text, add_special_tokens=False)) for text in texts)
    return min(512, 24 + 2 * longest)


def extract_many(loaded: LoadedModel, texts: Sequence[str], entity_types: str | Sequence[str] | None = None,
                 batch_size: int = 8, progress: Progress | None = None) -> list[list[dict]]:
    """``extract_entities`` for many texts, generated in batches; results in input order."""
    types = parse_entity_types(entity_types)
    texts = [check_text(text) for text in texts]
    if not texts:
        return []
    answers = generate_batch(loaded, [build_messages(text, types) for text in texts], _answer_budget(loaded, texts),
                             stop=_answer_done, batch_size=batch_size, progress=progress)
    return [parse_output(answer, text, types) for answer, text in zip(answers, texts)]


def extract_entities(loaded: LoadedModel, text: str, entity_types: str | Sequence[str] | None = None) -> list[dict]:
    """Entities [{"text","type","start","end"}] found by the model, with ``text[start:end] == entity``."""
    return extract_many(loaded, [text], entity_types, batch_size=1)[0]

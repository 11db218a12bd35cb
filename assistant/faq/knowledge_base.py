"""FAQ knowledge bases: the built-in bilingual one and a user's upload (CSV/TSV, JSONL or Markdown).

A knowledge base is immutable: an upload builds a new one (replacing or extending the built-in
one) that the FAQ tab keeps in the browser session's ``gr.State``, never in a global.

    python -m assistant.faq.knowledge_base                 # summary of the built-in FAQ
    python -m assistant.faq.knowledge_base my_faq.csv      # validate an upload, print its entries

A little over ~300 lines on purpose: the three upload formats (CSV/TSV, JSONL, Markdown Q/A) share the
column names, the limits and the duplicate-question checks kept here with the model they build.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.core.errors import InputError
from assistant.core.language import chinese_or_english

BUILTIN_PATH = Path(__file__).resolve().parents[1] / "data" / "faq.jsonl"
QUESTION_COLUMNS = ("question", "q", "问题", "问")
ANSWER_COLUMNS = ("answer", "a", "答案", "回答", "答")
ID_COLUMNS = ("id", "编号")
MODES = ("replace", "extend")


@dataclass(frozen=True)
class FaqText:
    lang: str
    question: str
    answer: str


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ item; the built-in ones carry an English and a Chinese version."""

    id: str
    texts: tuple[FaqText, ...]
    topic: str = ""

    def in_language(self, lang: str) -> FaqText:
        """The version in ``lang``, or the first version when the entry lacks that language."""
        return next((t for t in self.texts if t.lang == lang), self.texts[0])


@dataclass(frozen=True)
class KnowledgeBase:
    name: str
    """Shown in the status line: 'built-in FAQ', 'my_faq.csv', 'built-in FAQ + my_faq.csv'."""
    entries: tuple[FaqEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def content_hash(self) -> str:
        """Changes exactly when an id, language, question or answer changes (keys the embedding cache)."""
        rows = [[e.id, [[t.lang, t.question, t.answer] for t in e.texts]] for e in self.entries]
        return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.name} · {len(self)} entries · {len(self)} 条"


@dataclass
class UploadLimits:
    max_bytes: int = 5 * 1024 * 1024
    """Largest accepted upload, in bytes (default 5 MB)."""
    max_entries: int = 2000
    """Most entries in one upload: each must be embedded on the CPU before the upload can be asked."""

    def __post_init__(self):
        if int(self.max_bytes) < 1 or int(self.max_entries) < 1:
            raise InputError(f"Upload limits must be positive; got {self.max_bytes} bytes, {self.max_entries} entries.")


@lru_cache(maxsize=1)
def load_builtin() -> KnowledgeBase:
    """The shipped bilingual FAQ (``assistant/data/faq.jsonl``)."""
    located = _jsonl_entries(BUILTIN_PATH.read_text("utf-8"), BUILTIN_PATH.name)
    return KnowledgeBase("built-in FAQ", tuple(entry for _, entry in located))


def load_upload(path: str | Path, base: KnowledgeBase, mode: str = "replace",
                limits: UploadLimits | None = None) -> KnowledgeBase:
    """Parse an uploaded FAQ and return a new knowledge base that replaces or extends ``base``."""
    if mode not in MODES:
        raise InputError(f"Upload mode must be one of {', '.join(MODES)}; got '{mode}'.")
    path = Path(path)
    located = parse_located(path, limits)
    entries = tuple(entry for _, entry in located)
    if mode == "replace":
        return KnowledgeBase(path.name, entries)
    _check_no_clash(located, base, path.name)
    return KnowledgeBase(f"{base.name} + {path.name}", base.entries + entries)


def parse_file(path: str | Path, limits: UploadLimits | None = None) -> list[FaqEntry]:
    """Read and validate an upload; raise InputError naming the file and row/line on any problem."""
    return [entry for _, entry in parse_located(path, limits)]


def parse_located(path: str | Path, limits: UploadLimits | None = None) -> Located:
    """Like ``parse_file``, each entry with where it is in the file ("row 3 (line 4)", "line 7")."""
    path, limits = Path(path), limits or UploadLimits()
    name, suffix = path.name, path.suffix.lower()
    parsers = {".csv": _table_entries, ".tsv": _table_entries, ".jsonl": _jsonl_entries,
               ".md": _markdown_entries, ".markdown": _markdown_entries, ".txt": _markdown_entries}
    if suffix not in parsers:
        raise InputError(f"'{name}': unsupported file type '{suffix or '(none)'}'. "
                         "Upload a .csv, .tsv, .jsonl or .md (Markdown) file.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputError(f"'{name}' is {size / 1e6:.1f} MB; FAQ uploads are limited to "
                         f"{limits.max_bytes / 1e6:.1f} MB. Split the file or raise the limit.")
    text = decode_utf8(path.read_bytes(), name)
    if not text.strip():
        raise InputError.keyed("faq.empty_upload", name=name)
    located = parsers[suffix](text, name)
    if not located:
        raise InputError(f"'{name}' has no questions and answers: it contains only a header or blank lines.")
    if len(located) > limits.max_entries:
        raise InputError(f"'{name}' has {len(located)} entries; at most {limits.max_entries} are accepted. "
                         "Split the file.")
    _check_duplicates(located, name)
    return located


def decode_utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(
            f"'{name}' is not UTF-8 text: byte 0x{data[exc.start]:02X} at offset {exc.start} (line {line}) "
            "cannot be decoded. Save the file as UTF-8 (e.g. Excel: Save As > 'CSV UTF-8') and upload it again."
        ) from None


def _pick_column(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns if c}
    return next((lowered[a] for a in aliases if a in lowered), None)


Located = list[tuple[str, FaqEntry]]  # (where in the file: "row 3 (line 4)" / "line 7", entry)


def _rows_to_entries(rows: list[tuple[str, dict]], columns: list[str], name: str) -> Located:
    """Rows (where, record) with question/answer columns, or the built-in's question_en/answer_en/... ones."""
    langs = sorted({c[len("question_"):] for c in columns if c.startswith("question_")}
                   & {c[len("answer_"):] for c in columns if c.startswith("answer_")})
    q_col, a_col = _pick_column(columns, QUESTION_COLUMNS), _pick_column(columns, ANSWER_COLUMNS)
    id_col = _pick_column(columns, ID_COLUMNS)
    if not langs and not (q_col and a_col):
        raise InputError(
            f"'{name}' has columns {columns}; expected a question column ({', '.join(QUESTION_COLUMNS)}) and an "
            f"answer column ({', '.join(ANSWER_COLUMNS)}), case-insensitive, optionally an 'id' column. "
            "Rename the header row."
        )
    pairs = [(f"question_{lang}", f"answer_{lang}", lang) for lang in langs] or [(q_col, a_col, None)]
    located = []
    for number, (where, record) in enumerate(rows, start=1):
        record = {str(key).strip().lower(): value for key, value in record.items() if key is not None}
        texts = []
        for q_key, a_key, lang in pairs:
            q_key, a_key = q_key.strip().lower(), a_key.strip().lower()
            question, answer = str(record.get(q_key) or "").strip(), str(record.get(a_key) or "").strip()
            for field, key, value in (("question", q_key, question), ("answer", a_key, answer)):
                if not value:
                    raise InputError(f"'{name}' {where}: the {field} ('{key}') is empty. "
                                     "Fill it in or delete the row.")
            texts.append(FaqText(lang or chinese_or_english(question), question, answer))
        entry_id = str(record.get(id_col.strip().lower()) or "").strip() if id_col else ""
        topic = str(record.get("topic") or "")
        located.append((where, FaqEntry(entry_id or f"upload-{number:03d}", tuple(texts), topic)))
    return located


def _table_entries(text: str, name: str) -> Located:
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    rows = []
    try:
        for number, record in enumerate(reader, start=1):
            if any((v or "").strip() for v in record.values() if isinstance(v, str)):
                rows.append((f"row {number} (line {reader.line_num})", record))
    except csv.Error as exc:
        raise InputError(f"'{name}' line {reader.line_num} is not valid CSV ({exc}). "
                         "Check the quotes on that line.") from None
    return _rows_to_entries(rows, columns, name)


def _jsonl_entries(text: str, name: str) -> Located:
    rows, columns = [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"'{name}' line {line_number} is not valid JSON ({exc.msg}). Each line must be "
                             'one object like {"question": "...", "answer": "..."}.') from None
        if not isinstance(record, dict):
            raise InputError(f"'{name}' line {line_number} is a JSON {type(record).__name__}, not an object with "
                             "question/answer fields.")
        columns += [k for k in record if k not in columns]
        rows.append((f"line {line_number}", record))
    return _rows_to_entries(rows, columns, name)


_QA_LINE = re.compile(r"^\s*(?:[-*>]\s*)?\**\s*(Q|A|问|答)\s*\**\s*[:：]\s*\**\s*(.*)$", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _markdown_entries(text: str, name: str) -> Located:
    lines = text.splitlines()
    if any(_QA_LINE.match(line) for line in lines):
        return _markdown_qa_lines(lines, name)
    return _markdown_headings(lines, name)


def _markdown_qa_lines(lines: list[str], name: str) -> Located:
    """``Q: question`` then ``A: answer``; the answer runs on until the next ``Q:`` line or heading."""
    items: list[list] = []  # [question line number, question lines, answer line number, answer lines]
    for number, line in enumerate(lines, start=1):
        match = _QA_LINE.match(line)
        kind = match.group(1).upper() if match else None
        if kind in ("Q", "问"):
            if items and items[-1][2] is None:
                raise InputError(f"'{name}' line {items[-1][0]}: the question has no 'A:' answer line after it.")
            items.append([number, [match.group(2)], None, []])
        elif kind in ("A", "答"):
            if not items or items[-1][2] is not None:
                raise InputError(f"'{name}' line {number}: an 'A:' answer without a 'Q:' question before it.")
            items[-1][2], items[-1][3] = number, [match.group(2)]
        elif _HEADING.match(line) or not items:
            continue  # titles, section headings and an introduction are not part of any entry
        else:
            items[-1][3 if items[-1][2] is not None else 1].append(line)
    if items and items[-1][2] is None:
        raise InputError(f"'{name}' line {items[-1][0]}: the question has no 'A:' answer line after it.")
    rows = [(f"line {q_line}", {"question": " ".join(q).strip(), "answer": "\n".join(a).strip()})
            for q_line, q, _, a in items]
    return _rows_to_entries(rows, ["question", "answer"], name)


def _markdown_headings(lines: list[str], name: str) -> Located:
    """``## question`` headings (level 2-6), each followed by its answer paragraph(s); ``#`` is the title."""
    headings = [(i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    if not any(level >= 2 for _, level, _ in headings):
        raise InputError(f"'{name}' has no FAQ entries: use 'Q: ...' / 'A: ...' lines, or a '## question' heading "
                         "followed by the answer paragraph.")
    rows = []
    for k, (index, level, title) in enumerate(headings):
        if level < 2:
            continue
        end = headings[k + 1][0] if k + 1 < len(headings) else len(lines)
        body = "\n".join(lines[index + 1:end]).strip()
        if not body and k + 1 < len(headings) and headings[k + 1][1] > level:
            continue  # a section heading with deeper question headings under it
        rows.append((f"line {index + 1}", {"question": title, "answer": body}))
    return _rows_to_entries(rows, ["question", "answer"], name)


def _normalise(question: str) -> str:
    return re.sub(r"\s+", " ", question.casefold()).strip().rstrip("?？.。!！ ")


def _check_duplicates(located: Located, name: str) -> None:
    seen_ids: dict[str, str] = {}
    seen_questions: dict[str, str] = {}
    for where, entry in located:
        if entry.id in seen_ids:
            raise InputError(f"'{name}' {seen_ids[entry.id]} and {where} both have id '{entry.id}'. "
                             "Ids must be unique.")
        seen_ids[entry.id] = where
        for text in entry.texts:
            key = _normalise(text.question)
            if seen_questions.get(key, where) != where:
                raise InputError(f"'{name}' {seen_questions[key]} and {where} ask the same question "
                                 f"('{text.question}'). Keep one of them.")
            seen_questions[key] = where


def _check_no_clash(located: Located, base: KnowledgeBase, name: str) -> None:
    base_ids = {e.id for e in base.entries}
    base_questions = {_normalise(t.question): e.id for e in base.entries for t in e.texts}
    for where, entry in located:
        if entry.id in base_ids:
            raise InputError(f"'{name}' {where}: id '{entry.id}' is already used by the {base.name}. "
                             "Rename it, or choose Replace instead of Extend.")
        for text in entry.texts:
            if _normalise(text.question) in base_questions:
                raise InputError(f"'{name}' {where} repeats the question of {base.name} entry "
                                 f"{base_questions[_normalise(text.question)]} ('{text.question}'). "
                                 "Remove it, or choose Replace instead of Extend.")


if __name__ == "__main__":
    kb = load_builtin() if len(sys.argv) < 2 else load_upload(sys.argv[1], load_builtin(), "replace")
    print(kb.describe(), "· hash", kb.content_hash)
    for entry in kb.entries[:10]:
        print(f"  {entry.id}: " + " | ".join(f"[{t.lang}] {t.question}" for t in entry.texts))

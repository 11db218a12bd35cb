"""Split a document's sections into passages: runs of whole sentences of about ``target_units`` units
(an English word or a Chinese character is one unit), never across a page or heading, so every passage
keeps its file, page and heading. A passage's searchable text starts with its heading.

    python -m assistant.documents.passages notes.md           # print the passages of a file
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass

from assistant.documents.sections import Section
from assistant.core.errors import InputError
from assistant.core.language import HAN, HAN_CHARS

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s+|(?<=[。！？；])|\n\s*\n")
_UNIT = re.compile(f"[{HAN_CHARS}]|[A-Za-z0-9]+")


@dataclass
class PassageSettings:
    target_units: int = 120
    """A passage closes once it reaches this many units (about 120 English words or 120 Chinese characters;
    MiniLM reads 256 word pieces, so a passage fits whole)."""
    max_units: int = 200
    """A single sentence longer than this is cut into pieces of this size."""

    def __post_init__(self):
        if not 10 <= int(self.target_units) <= int(self.max_units) <= 1000:
            raise InputError(f"Passage sizes need 10 <= target_units <= max_units <= 1000; got "
                             f"{self.target_units}, {self.max_units}.")


@dataclass(frozen=True)
class Passage:
    file: str
    file_hash: str
    number: int
    """0-based position of the passage in its file."""
    text: str
    page: int | None = None
    heading: str = ""

    @property
    def searchable(self) -> str:
        """What is embedded and matched: the heading (when there is one), then the text."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    @property
    def where(self) -> str:
        """"p. 3", "Install > On Windows" or "" (the page when there is one, else the heading)."""
        return f"p. {self.page}" if self.page is not None else self.heading


def units(text: str) -> int:
    return len(_UNIT.findall(text))


def file_hash(data: bytes) -> str:
    """The content hash a document is known by in an index (same bytes, same hash, whatever the name)."""
    return hashlib.sha256(data).hexdigest()[:32]


def _sentences(text: str, max_units: int) -> list[str]:
    pieces = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split()) if not HAN.search(sentence) else \
            re.sub(r"\s+", " ", sentence).strip()
        if not sentence:
            continue
        while units(sentence) > max_units:  # an endless line (a table dump, a log): cut it by units
            cut = [m.end() for m in _UNIT.finditer(sentence)][max_units - 1]
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def split_passages(sections: list[Section], file: str, content_hash: str,
                   settings: PassageSettings | None = None) -> list[Passage]:
    """The passages of one document, in reading order."""
    settings = settings or PassageSettings()
    passages: list[Passage] = []
    for section in sections:
        current: list[str] = []
        size = 0
        for sentence in _sentences(section.text, settings.max_units):
            current.append(sentence)
            size += units(sentence)
            if size >= settings.target_units:
                passages.append(_passage(current, file, content_hash, len(passages), section))
                current, size = [], 0
        if current:
            if size < settings.target_units // 4 and passages and passages[-1].page == section.page \
                    and passages[-1].heading == section.heading:
                last = passages.pop()  # a short tail joins the passage before it (same page and heading)
                current = [last.text] + current
            passages.append(_passage(current, file, content_hash, len(passages), section))
    return passages


def _passage(sentences: list[str], file: str, content_hash: str, number: int, section: Section) -> Passage:
    joined = ""
    for sentence in sentences:  # no space between Chinese sentences
        joined += sentence if not joined or HAN.match(sentence[:1]) and \
            re.search(r"[。！？；]$", joined) else " " + sentence
    return Passage(file, content_hash, number, joined, section.page, section.heading)


if __name__ == "__main__":
    from pathlib import Path

    from assistant.documents.readers import read_document

    for arg in sys.argv[1:]:
        for p in split_passages(read_document(arg), Path(arg).name, file_hash(Path(arg).read_bytes())):
            print(f"#{p.number} [{p.where}] ({units(p.text)} units) {p.text[:160]}")

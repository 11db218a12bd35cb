"""Read an uploaded document (PDF, TXT, Markdown, HTML, DOCX) into sections of plain text, each with
its page (PDF) or heading (Markdown, HTML, DOCX), or refuse it with a message that names the file and
says what to do: unsupported type, over the size limit, empty, binary, encrypted, damaged, or a PDF
with no text layer (a scan).

Reading stops at the limits while it reads (``DocumentLimits``): a document is refused as soon as its text
passes ``max_chars``, and what a PDF or DOCX may unpack to is bounded from that limit before it is
unpacked (``pdf_text``, ``docx_text``), so a small file that unpacks to gigabytes costs seconds and
megabytes, not minutes and gigabytes.

    python -m assistant.documents.readers manual.pdf notes.md      # print each file's sections
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

from assistant.core.errors import InputError
from assistant.documents.sections import DocumentLimits, Section, too_much_text

TYPES = {".pdf": "pdf", ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
         ".html": "html", ".htm": "html", ".docx": "docx"}
SUPPORTED_LIST = "PDF, TXT, Markdown (.md), HTML or DOCX"
__all__ = ["DocumentLimits", "Section", "SUPPORTED_LIST", "TYPES", "read_document"]


def read_document(path: str | Path, name: str | None = None, limits: DocumentLimits | None = None) -> list[Section]:
    """The document's sections (at least one, with text); InputError naming ``name`` otherwise."""
    path, limits = Path(path), limits or DocumentLimits()
    name = name or path.name
    kind = TYPES.get(Path(name).suffix.lower())
    if kind is None:
        raise InputError(f"'{name}': unsupported file type '{Path(name).suffix or '(none)'}'. Upload {SUPPORTED_LIST} "
                         "files; save other formats (Word .doc, slides, spreadsheets) as PDF or DOCX first.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputError(f"'{name}' is {size / 1e6:.1f} MB; documents are limited to {limits.max_bytes / 1e6:.0f} MB. "
                         "Split it into smaller files.")
    if size == 0:
        raise InputError(f"'{name}' is empty (0 bytes): upload the file again, or a file with text in it.")
    data = path.read_bytes()
    sections = {"pdf": _read_pdf, "docx": _read_docx}.get(kind, _read_plain)(data, name, kind, limits)
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise InputError(f"'{name}' has no text to search: it is blank. Upload a document with text in it.")
    if sum(len(s.text) for s in sections) > limits.max_chars:
        raise too_much_text(name, limits.max_chars)
    return sections


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or GB18030 (Chinese Windows); binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:8192]:
        raise InputError(f"'{name}' looks like a binary file, not text. Upload the document itself "
                         f"({SUPPORTED_LIST}), or export it as text.")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"'{name}' is not text in UTF-8 or GB18030: save it as UTF-8 and upload it again.")


def _read_plain(data: bytes, name: str, kind: str, limits: DocumentLimits) -> list[Section]:
    text = decode_text(data, name)
    if kind == "markdown":
        return _markdown_sections(text)
    if kind == "html":
        return _html_sections(text, name, limits.max_chars)
    if len(text) > limits.max_chars:
        raise too_much_text(name, limits.max_chars)
    return [Section(text)]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown_sections(text: str) -> list[Section]:
    sections, path, lines, in_code = [], [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else _MD_HEADING.match(line)
        if heading:
            sections.append(Section("\n".join(lines), heading=" > ".join(t for _, t in path)))
            level = len(heading.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, heading.group(2).strip())]
            lines = []
        else:
            lines.append(line)
    sections.append(Section("\n".join(lines), heading=" > ".join(t for _, t in path)))
    return sections


class _HtmlText(HTMLParser):
    """Visible text by heading; script, style and the head's other parts are skipped."""

    SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    BLOCKS = {"p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "table", "ul", "ol", "dd", "dt"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.path, self.parts, self.skipping, self.heading_level, self.heading_text = [], [], [], 0, 0, []
        self.chars = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._close()
            self.heading_level, self.heading_text = int(tag[1]), []
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading_level:
            title = " ".join("".join(self.heading_text).split())
            self.path = [(lvl, t) for lvl, t in self.path if lvl < self.heading_level] + [(self.heading_level, title)]
            self.heading_level = 0
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skipping:
            return
        self.chars += len(data)
        (self.heading_text if self.heading_level else self.parts).append(data)

    def _close(self):
        self.sections.append(Section(re.sub(r"\n\s*\n+", "\n\n", "".join(self.parts)),
                                     heading=" > ".join(t for _, t in self.path)))
        self.parts = []

    def result(self) -> list[Section]:
        self._close()
        return self.sections


def _html_sections(text: str, name: str, max_chars: int) -> list[Section]:
    """Fed 1 MiB at a time, so that a page with too much text is refused as soon as it passes the limit."""
    parser = _HtmlText()
    for start in range(0, len(text), 2**20):
        parser.feed(text[start:start + 2**20])
        if parser.chars > max_chars:
            raise too_much_text(name, max_chars)
    parser.close()
    return parser.result()


def _read_pdf(data: bytes, name: str, kind: str, limits: DocumentLimits) -> list[Section]:
    from assistant.documents.pdf_text import pdf_pages

    sections = [Section(text, page=number) for number, text in
                enumerate(pdf_pages(data, name, limits.max_pages, limits.max_chars), start=1)]
    if not any(s.text.strip() for s in sections):
        raise InputError(f"'{name}' has no text layer: its {len(sections)} page(s) are images (a scan?). Run OCR on "
                         "it first (e.g. `ocrmypdf in.pdf out.pdf`) and upload the result.")
    return sections


def _read_docx(data: bytes, name: str, kind: str, limits: DocumentLimits) -> list[Section]:
    from assistant.documents.docx_text import docx_sections

    return docx_sections(data, name, limits.max_chars)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        try:
            for section in read_document(arg):
                print(f"[{arg} p.{section.page} {section.heading!r}] {section.text[:200]!r}")
        except InputError as exc:
            print(f"error: {exc}")

"""The text of a DOCX, read as a stream within bounds set before a byte is unpacked, so that a small file
holding a huge XML part (a zip bomb) is refused quickly and in little memory. A DOCX is a zip: its
central directory, each part's declared size and compression are checked first; the body
(word/document.xml) is then unpacked 64 KiB at a time into an XML parser that keeps no tree, and reading
stops as soon as the text passes the character limit or the XML passes its byte bound.

    python -m assistant.documents.docx_text report.docx       # print each section's heading and text
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import sys
import zipfile
from collections.abc import Iterator

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError
from assistant.documents.sections import Section, too_much_text

XML_BYTES_PER_CHAR = 16
"""The body may unpack to this many bytes of XML per character of the text limit (Word writes 2-10 bytes
of markup per character of text; 16 leaves room for heavily formatted files). At the default limit of
5,000,000 characters: 80 MB."""
SMALL_PART_BYTES = 4 * 2**20
"""Relationship and style parts unpack to at most this (they are kilobytes in real files)."""
DIRECTORY_BYTES = 2**20
"""The zip's central directory is at most this long (about 10,000 parts; a DOCX has tens)."""
CHUNK = 64 * 1024
W_NAMESPACES = {"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                "http://purl.oclc.org/ooxml/wordprocessingml/main"}
FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
RUN_CHARS = {"tab": "\t", "ptab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}
W_TAGS = {f"{{{namespace}}}{local}": local for namespace in W_NAMESPACES
          for local in ("p", "pStyle", "r", "t", "tr", "tc", *RUN_CHARS)}
"""The WordprocessingML elements the text comes from, by lxml tag ("{namespace}local") -> local name."""


def _not_docx(name: str, why: str) -> InputError:
    return InputError(f"'{name}' is not a valid DOCX file ({why}). Save it from Word or LibreOffice as .docx "
                      "(not .doc) and upload it again.")


def _too_big(name: str, part: str, limit: int) -> InputError:
    return InputError(f"'{name}' unpacks to more than {human_bytes(limit)} in {part}: it is too large or a zip "
                      "bomb. Split it into smaller files.")


def open_package(data: bytes, name: str) -> zipfile.ZipFile:
    """The zip, once its central directory is known to be small (it is parsed whole when opened)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) < end + 22:
        raise _not_docx(name, "not a zip archive")
    if end >= 20 and data[end - 20:end - 16] == b"PK\x06\x07":
        raise _not_docx(name, "a ZIP64 archive, which a document never needs")
    directory_size = struct.unpack_from("<I", data, end + 12)[0]
    if directory_size > DIRECTORY_BYTES:
        raise _not_docx(name, f"its zip directory is {human_bytes(directory_size)}, too many parts")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise _not_docx(name, type(exc).__name__) from None


def part_chunks(package: zipfile.ZipFile, part: str, limit: int, name: str) -> Iterator[bytes]:
    """``part`` unpacked CHUNK bytes at a time; refused if it declares, or turns out to hold, more than
    ``limit`` bytes (zip headers can lie), or uses a compression other than a DOCX's."""
    try:
        info = package.getinfo(part)
    except KeyError:
        raise _not_docx(name, f"it has no {part}") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _not_docx(name, f"{part} uses compression method {info.compress_type}")
    if info.flag_bits & 0x1:
        raise InputError(f"'{name}' is encrypted with a password. Save a copy without a password and upload that.")
    if info.file_size > limit:
        raise _too_big(name, part, limit)
    read = 0
    try:
        with package.open(info) as stream:
            while chunk := stream.read(CHUNK):
                read += len(chunk)
                if read > limit:
                    raise _too_big(name, part, limit)
                yield chunk
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise _not_docx(name, f"{part}: {type(exc).__name__}") from None


def _small_part(package: zipfile.ZipFile, part: str, name: str):
    """A small XML part as a tree (no DTD, no entities, no network); None when the package has no such part."""
    from lxml import etree

    if part not in package.NameToInfo:
        return None
    try:
        return etree.fromstring(b"".join(part_chunks(package, part, SMALL_PART_BYTES, name)), _parser())
    except etree.Error as exc:
        raise _not_docx(name, f"{part}: {_reason(exc)}") from None


def _parser(target=None):
    from lxml import etree

    return etree.XMLParser(target=target, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _reason(exc: Exception) -> str:
    return str(exc).split(", line")[0][:120] or type(exc).__name__


def _relationships(package: zipfile.ZipFile, source: str, name: str) -> dict[str, str]:
    """Relationship type (its last path segment: "officeDocument", "styles") -> the part it points to."""
    folder, base = posixpath.split(source)
    tree = _small_part(package, posixpath.join(folder, "_rels", base + ".rels"), name)
    found = {}
    for element in tree.iter("{*}Relationship") if tree is not None else ():
        target, kind = element.get("Target") or "", (element.get("Type") or "").rsplit("/", 1)[-1]
        if element.get("TargetMode") != "External" and target and kind not in found:
            joined = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            found[kind] = posixpath.normpath(joined)
    return found


def style_names(package: zipfile.ZipFile, main: str, name: str) -> dict[str, str]:
    """Paragraph style id -> style name ("Heading1" -> "heading 1"); empty when there is no styles part."""
    styles = _relationships(package, main, name).get("styles")
    tree = _small_part(package, styles, name) if styles else None
    names = {}
    for style in tree.iter("{*}style") if tree is not None else ():
        style_id = next((v for k, v in style.attrib.items() if k.endswith("}styleId")), None)
        label = next((v for e in style.iterfind("{*}name") for k, v in e.attrib.items() if k.endswith("}val")), None)
        if style_id and label:
            names[style_id] = label
    return names


def heading_level(style: str) -> int | None:
    """0 for the Title style, N for "Heading N" (by name, or by id where the file has no styles part)."""
    lowered = style.lower()
    if lowered == "title":
        return 0
    match = re.match(r"heading ?(\d)", lowered)
    return int(match.group(1)) if match else None


def _split(tag: str) -> tuple[str, str]:
    """("namespace", "local name") of an lxml tag ("{namespace}local", or "local" outside any namespace)."""
    return tuple(tag[1:].split("}", 1)) if tag.startswith("{") else ("", tag)


class Pieces:
    """Strings joined by ``sep`` in batches, so that millions of tiny pieces cost their characters rather
    than an object each."""

    def __init__(self, sep: str = ""):
        self.sep, self._joined, self._pending = sep, [], []

    def add(self, piece: str):
        self._pending.append(piece)
        if len(self._pending) >= 4096:
            self._joined.append(self.sep.join(self._pending))
            self._pending = []

    def text(self) -> str:
        return self.sep.join(self._joined + ([self.sep.join(self._pending)] if self._pending else []))


class BodyText:
    """An lxml parser target (no tree is kept) that turns the body into sections: paragraphs and table rows
    ("a | b | c") in document order, a new section at each heading. ``chars`` counts the text so far."""

    def __init__(self, level_of):
        self.level_of, self.sections, self.chars, self.root = level_of, [], 0, None
        self._path, self._lines = [], Pieces("\n")
        self._paragraphs: list[list] = []  # [style id, Pieces] of each open paragraph
        self._rows: list[Pieces] = []
        self._cells: list[Pieces] = []
        self._text = self._runs = self._skip = 0

    def start(self, tag, attrib):
        if self._skip or tag == FALLBACK:  # the fallback repeats what its alternative holds
            self._skip += 1
            return
        if self.root is None:
            self.root = _split(tag)[1]
        local = W_TAGS.get(tag)  # one lookup per element: a body can hold millions of them
        if local is None:
            return
        if local == "r":
            self._runs += 1
        elif local == "t":
            self._text += 1
        elif local == "p":
            self._paragraphs.append(["", Pieces()])
        elif local == "pStyle":
            if self._paragraphs:
                self._paragraphs[-1][0] = attrib.get(tag[:-len("pStyle")] + "val", "")
        elif local == "tr":
            self._rows.append(Pieces(" | "))
        elif local == "tc":
            self._cells.append(Pieces("\n"))
        elif self._runs and self._paragraphs:
            self._add(RUN_CHARS[local])

    def end(self, tag):
        if self._skip:
            self._skip -= 1
            return
        local = W_TAGS.get(tag)
        if local == "r":
            self._runs = max(0, self._runs - 1)
        elif local == "t":
            self._text = max(0, self._text - 1)
        elif local == "p" and self._paragraphs:
            style, parts = self._paragraphs.pop()
            self._paragraph(style, parts.text())
        elif local == "tc" and self._cells:
            cell = self._cells.pop().text().strip()
            if self._rows:
                self._rows[-1].add(cell)
                self.chars += 3
        elif local == "tr" and self._rows:
            self._paragraph("", self._rows.pop().text())

    def data(self, text):
        if self._text and not self._skip and self._paragraphs:
            self._add(text)

    def close(self) -> list[Section]:
        """Called by the parser at the end of the body."""
        self._end_section()
        return self.sections

    def _end_section(self):
        self.sections.append(Section(self._lines.text(), heading=" > ".join(t for _, t in self._path)))

    def _add(self, text: str):
        self._paragraphs[-1][1].add(text)
        self.chars += len(text)

    def _paragraph(self, style: str, text: str):
        self.chars += 1
        if self._cells:  # a paragraph (or a nested table's row) inside a table cell
            self._cells[-1].add(text)
            return
        level = self.level_of(style) if style else None
        if level is not None and text.strip():
            self._end_section()
            self._path = [(lvl, t) for lvl, t in self._path if lvl < level] + [(level, text.strip())]
            self._lines = Pieces("\n")
        else:
            self._lines.add(text)


def docx_sections(data: bytes, name: str, max_chars: int) -> list[Section]:
    """The body's sections, each under its heading path ("Install > On Windows"), tables' rows as
    "a | b | c" where they stand; an InputError naming ``name`` when the file is not a DOCX, is damaged,
    holds more than ``max_chars`` characters, or unpacks past its byte bounds."""
    from lxml import etree

    with open_package(data, name) as package:
        main = _relationships(package, "", name).get("officeDocument") or "word/document.xml"
        names = style_names(package, main, name)
        body = BodyText(lambda style: heading_level(names.get(style, style)))
        parser = _parser(body)
        try:
            for chunk in part_chunks(package, main, XML_BYTES_PER_CHAR * max_chars, name):
                parser.feed(chunk)
                if body.root not in (None, "document"):
                    raise _not_docx(name, f"its main part is a '{body.root}' part, not a Word document")
                if body.chars > max_chars:
                    raise too_much_text(name, max_chars)
            return parser.close()
        except etree.Error as exc:
            raise InputError(f"'{name}' is a damaged DOCX: its text could not be read ({_reason(exc)}). Save it "
                             "again from Word or LibreOffice and upload it again.") from None


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        with open(arg, "rb") as handle:
            for section in docx_sections(handle.read(), arg, 5_000_000):
                print(f"[{section.heading}] {section.text[:200]!r}")

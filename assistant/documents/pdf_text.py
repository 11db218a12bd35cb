"""The text of a PDF, page by page, within bounds: at most ``max_pages`` pages, at most
CONTENT_BYTES_PER_CHAR bytes of unpacked content per character of the text limit parsed in all (page
content and the forms it draws, once per use: a small file whose compressed streams unpack to gigabytes,
or one stream shared by thousands of pages, is refused before it is parsed), no content stream with
more than PAGE_TEXT_BYTES of text strings, and reading stops as soon as the text passes ``max_chars``.
Whatever pypdf raises on a file becomes a message naming it.

    python -m assistant.documents.pdf_text manual.pdf       # print each page's length and start
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError
from assistant.documents.sections import too_much_text

CONTENT_BYTES_PER_CHAR = 16
"""Unpacked page content (drawing and text instructions) allowed per character of the text limit, over
the whole document: text PDFs hold 3-10 bytes per character of text (LaTeX and DocBook output: 3-4). At
the default limit of 5,000,000 characters: 80 MB (pypdf took 7 s on 70 MB of page content here)."""
PAGE_TEXT_BYTES = 200_000
"""Bytes of text strings one content stream may hold: pypdf's extraction time grows with the square of a
run of text (650,000 characters in one run: 2.7 s), and a printed page holds under 20,000."""
MAX_FORM_DEPTH = 8
"""Forms drawn inside forms are counted this deep."""
MAX_FORM_USES = 5000
"""Form uses counted on one page: pypdf draws no more (its xform_maximum_invocations_per_extraction)."""
DRAW_FORM = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do\b")
TEXT_STRINGS = re.compile(rb"\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f\s]+>")
PYPDF_OUTPUT_LIMITS = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
                       "brotli_maximum_output_length", "array_based_stream_maximum_output_length")


def _pypdf_limits(budget: int):
    """pypdf's own per-stream unpacking limits, lowered to ``budget`` where they are higher, for this thread
    only (pypdf keeps its configuration in a context variable); pypdf before 6.18 keeps its defaults."""
    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:
        return contextlib.nullcontext()
    current = pypdf.get_configuration()
    return apply(**{n: min(getattr(current, n), budget) for n in PYPDF_OUTPUT_LIMITS if hasattr(current, n)})


class _Cost:
    """What extracting one page's text makes pypdf parse: its content streams, and each form XObject they
    draw as many times as they draw it (pypdf parses a form again at each use)."""

    def __init__(self, name: str, number: int, limit: int):
        self.name, self.number, self.limit, self._forms, self._uses = name, number, limit, {}, 0

    def page(self, page) -> int:
        contents = _resolved(page.get("/Contents"))
        resources, total = _resolved(page.get("/Resources")), 0
        for item in contents if isinstance(contents, list) else [contents]:
            total += self.stream(_resolved(item), resources, 0)
            if total > self.limit:
                break
        return total

    def stream(self, stream, resources, depth: int) -> int:
        from pypdf.generic import StreamObject

        if not isinstance(stream, StreamObject):
            return 0
        data = stream.get_data()  # pypdf keeps it: extraction does not unpack it again
        if len(data) > PAGE_TEXT_BYTES and _text_bytes_pass(data, PAGE_TEXT_BYTES):
            raise InputError(f"'{self.name}' has a page ({self.number}) holding more than {PAGE_TEXT_BYTES:,} bytes "
                             "of text strings in one content stream (a printed page holds under 20,000): it is "
                             "built to exhaust the reader. Re-export it from the program that made it.")
        cost = len(data)
        forms = _forms(resources) if depth < MAX_FORM_DEPTH else {}
        for match in DRAW_FORM.finditer(data) if forms else ():
            form = forms.get("/" + match.group(1).decode("latin-1"))
            if form is None:
                continue
            if id(form) not in self._forms:
                self._forms[id(form)] = self.stream(form, _resolved(form.get("/Resources")) or resources, depth + 1)
            cost += self._forms[id(form)]
            self._uses += 1
            if cost > self.limit or self._uses > MAX_FORM_USES:
                break
        return cost


def _text_bytes_pass(data: bytes, limit: int) -> bool:
    """Whether the text strings in ``data`` ("(...)" and "<hex>") pass ``limit`` bytes, counted one at a time."""
    total = 0
    for match in TEXT_STRINGS.finditer(data):
        total += match.end() - match.start()
        if total > limit:
            return True
    return False


def _resolved(value):
    return value.get_object() if value is not None else None


def _forms(resources) -> dict:
    """The form XObjects a content stream can draw: "/Name" -> stream."""
    xobjects = _resolved(resources.get("/XObject")) if isinstance(resources, dict) else None
    found = {}
    for key, value in xobjects.items() if isinstance(xobjects, dict) else ():
        value = _resolved(value)
        if isinstance(value, dict) and value.get("/Subtype") == "/Form":
            found[str(key)] = value
    return found


def pdf_pages(data: bytes, name: str, max_pages: int, max_chars: int) -> list[str]:
    """Each page's text (possibly empty); an InputError naming ``name`` for a file that is not a PDF, is
    encrypted, damaged, longer than ``max_pages``, holds more than ``max_chars`` characters or unpacks past
    the content budget."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # warnings about odd but readable files
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise InputError(f"'{name}' is not a PDF (it does not start with %PDF): upload the real PDF, or rename "
                         "the file to its actual type.")
    budget = CONTENT_BYTES_PER_CHAR * max_chars
    try:
        with _pypdf_limits(budget):
            return _pages(data, name, max_pages, max_chars, budget)
    except InputError:
        raise
    except Exception as exc:  # pypdf parses untrusted bytes: anything it raises on them means a file it cannot read
        if type(exc).__name__ == "LimitReachedError":
            raise InputError(f"'{name}' passes one of the PDF reader's safety limits ({str(exc)[:150]}): it is too "
                             "large or built to exhaust the reader. Split it, or re-export it, and upload it "
                             "again.") from None
        raise InputError(f"'{name}' is a damaged PDF that cannot be read ({type(exc).__name__}). Re-export it "
                         "from the program that made it and upload it again.") from None


def _pages(data: bytes, name: str, max_pages: int, max_chars: int, budget: int) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise InputError(f"'{name}' is encrypted with a password. Open it, save or print it as a PDF without a "
                         "password, and upload that copy.")
    if len(reader.pages) > max_pages:
        raise InputError(f"'{name}' has {len(reader.pages)} pages; at most {max_pages} are read. Split it.")
    texts, chars, content = [], 0, 0
    for number, page in enumerate(reader.pages, start=1):
        content += _Cost(name, number, budget - content).page(page)
        if content > budget:
            raise InputError(f"'{name}' unpacks to more than {human_bytes(budget)} of page content by page {number} "
                             f"(the limit for {max_chars:,} characters of text): it is too large or a compression "
                             "bomb. Split it into smaller files.")
        texts.append(page.extract_text() or "")
        chars += len(texts[-1])
        if chars > max_chars:
            raise too_much_text(name, max_chars)
    return texts


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        with open(arg, "rb") as handle:
            for page_number, page_text in enumerate(pdf_pages(handle.read(), arg, 2000, 5_000_000), start=1):
                print(f"[{arg} p.{page_number}] {len(page_text)} chars: {page_text[:100]!r}")

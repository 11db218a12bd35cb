"""Hostile documents (issue 24): files small on disk that unpack to hundreds of megabytes are refused
with a message naming the file and the limit, in a bounded time and memory; document text shows as text.

Each file is read in a fresh process that reports its CPU time and the growth of its peak resident memory
(ru_maxrss), so the bounds are on what the reader really holds, lxml's and zlib's C memory included. The
bounds are generous (the readers held 1-3.5 GB on these files before).

    pytest tests/test_hostile_documents.py -q
    python -m tests.test_hostile_documents DIR     # build the issue-scale files in DIR and print the costs
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from assistant.documents.answer import as_markdown_text
from assistant.documents.readers import DocumentLimits, read_document
from tests.document_files import (MB, W_NS, docx_lying_sizes, docx_markup_flood, docx_space_flood,
                                  docx_text_flood, docx_with_body, pdf_flate_bomb, pdf_form_bomb)

REPO = Path(__file__).resolve().parents[1]
RUN_END = b"<w:r><w:t>The one sentence.</w:t></w:r></w:p>"
READ_IN_CHILD = r"""
import json, resource, sys, time
import lxml.etree, pypdf
from assistant.core.errors import InputError
from assistant.documents.readers import DocumentLimits, read_document
limits = DocumentLimits(**json.loads(sys.argv[2]))
base, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.process_time()
try:
    chars, error = sum(len(s.text) for s in read_document(sys.argv[1], limits=limits)), None
except InputError as exc:
    chars, error = None, str(exc)
print(json.dumps({"error": error, "chars": chars, "cpu_s": round(time.process_time() - start, 2),
                  "growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)}))
"""


def read_in_child(path: Path, **limits) -> dict:
    """{"error", "chars", "cpu_s", "growth_mb"} of ``read_document(path)`` in a fresh process; a traceback
    (an error that did not become a message) fails the test with its text."""
    done = subprocess.run([sys.executable, "-c", READ_IN_CHILD, str(path), json.dumps(limits)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_docx_of_70_mb_of_text_xml_stops_reading_at_the_character_limit(tmp_path):
    path = docx_text_flood(tmp_path / "flood.docx", 70 * MB)
    assert path.stat().st_size < 500_000
    cost = read_in_child(path)
    assert cost["error"] == "'flood.docx' holds more than 5,000,000 characters of text; split it into smaller files."
    assert cost["growth_mb"] < 100, cost  # python-docx: 1.5 GB and 188 s on 100 MB of it


def test_a_docx_whose_body_unpacks_past_the_bound_is_refused_before_it_is_parsed(tmp_path):
    path = docx_space_flood(tmp_path / "spaces.docx", 200 * MB)
    cost = read_in_child(path)
    assert cost["error"].startswith("'spaces.docx' unpacks to more than 76 MiB in word/document.xml"), cost
    assert "zip bomb" in cost["error"] and cost["growth_mb"] < 50 and cost["cpu_s"] < 5, cost
    lowered = read_in_child(docx_markup_flood(tmp_path / "markup.docx", 2 * MB), max_chars=100_000)
    assert lowered["error"].startswith("'markup.docx' unpacks to more than 1.5 MiB in word/document.xml")


def test_zip_headers_that_understate_the_size_do_not_let_more_through(tmp_path):
    path = docx_lying_sizes(tmp_path / "liar.docx", 100 * MB, declared=1000)
    cost = read_in_child(path)
    assert cost["error"].startswith("'liar.docx' is not a valid DOCX file (word/document.xml: BadZipFile)"), cost
    assert cost["growth_mb"] < 50, cost


def test_markup_without_text_is_read_within_the_byte_bound_in_bounded_memory(tmp_path):
    """Empty runs add no text: the whole bound is parsed, streamed (no tree is kept)."""
    run_flood = docx_with_body(tmp_path / "runs.docx", [b"<w:p>", b"<w:r/>" * (6 * MB // 6), RUN_END])
    cost = read_in_child(run_flood, max_chars=500_000)  # an 8 MB bound: the 6 MB body fits
    assert cost["error"] is None and cost["chars"] == len("The one sentence."), cost
    assert cost["growth_mb"] < 50, cost


def test_entities_in_a_docx_are_not_expanded(tmp_path):
    """A billion-laughs body: ten levels of ten references; expanded, it would be 10 GB of text."""
    entities = '<!ENTITY e0 "lollollollol">' + "".join(
        f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, 10))
    path = tmp_path / "laughs.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("word/document.xml", f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
                         f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>Intro. &e9;</w:t></w:r></w:p>'
                         "</w:body></w:document>")
    cost = read_in_child(path)
    assert cost["growth_mb"] < 50, cost  # libxml2 refuses the amplification, or the references stay unexpanded
    assert (cost["error"] or "").startswith("'laughs.docx' is a damaged DOCX") or cost["chars"] < 100, cost


@pytest.mark.parametrize("pages, shared", [(14, False), (40, True)])
def test_a_pdf_whose_pages_unpack_past_the_content_budget_is_refused(tmp_path, pages, shared):
    """Pages of 12 MB each against a 16 MB budget (1,000,000 characters). At the issue's scale, 14 pages of
    70 MB (under pypdf's own 75 MB a stream) took 73 s and kept 1 GB; one stream shared by 2000 pages was
    parsed once per page (over 400 s)."""
    path = pdf_flate_bomb(tmp_path / "bomb.pdf", 12 * MB, pages=pages, shared=shared)
    assert path.stat().st_size < 200_000
    cost = read_in_child(path, max_chars=1_000_000)
    assert cost["error"].startswith("'bomb.pdf' unpacks to more than 15 MiB of page content by page 2 "
                                    "(the limit for 1,000,000 characters of text)"), cost
    assert "compression bomb" in cost["error"] and cost["growth_mb"] < 100, cost


def test_a_form_drawn_thousands_of_times_counts_at_each_use(tmp_path):
    """pypdf parses a form XObject again at each use: 4000 uses of a 5 MB form are 20 GB of parsing."""
    cost = read_in_child(pdf_form_bomb(tmp_path / "forms.pdf", 5 * MB, 4000))
    assert cost["error"].startswith("'forms.pdf' unpacks to more than 76 MiB of page content by page 1 "), cost
    assert cost["cpu_s"] < 30 and cost["growth_mb"] < 100, cost


def test_a_pdf_stream_past_the_readers_limits_is_a_message_not_a_traceback(tmp_path):
    one_stream = read_in_child(pdf_flate_bomb(tmp_path / "deep.pdf", 200 * MB))
    assert one_stream["error"].startswith("'deep.pdf' passes one of the PDF reader's safety limits"), one_stream
    assert one_stream["growth_mb"] < 300, one_stream
    lowered = read_in_child(pdf_flate_bomb(tmp_path / "small.pdf", 3 * MB), max_chars=100_000)
    assert lowered["error"].startswith("'small.pdf' passes one of the PDF reader's safety limits"), lowered


def test_a_page_with_one_huge_run_of_text_is_refused_before_extraction(tmp_path):
    """pypdf's time grows with the square of a run of text: 650,000 characters in one run took 2.7 s."""
    cost = read_in_child(pdf_flate_bomb(tmp_path / "run.pdf", MB, filler=b"(lorem ipsum) Tj "))
    assert cost["error"].startswith("'run.pdf' has a page (1) holding more than 200,000 bytes of text strings"), cost
    assert cost["cpu_s"] < 5, cost


def test_pdf_text_extraction_stops_at_the_character_limit(tmp_path):
    """2000 pages sharing one stream of about 100,000 characters: reading stops on page 11, not page 2000."""
    path = pdf_flate_bomb(tmp_path / "chatty.pdf", 150_000, pages=2000, filler=b"(lorem ipsum) Tj ", shared=True)
    cost = read_in_child(path, max_chars=1_000_000)
    assert cost["error"] == "'chatty.pdf' holds more than 1,000,000 characters of text; split it into smaller files."
    assert cost["cpu_s"] < 60, cost  # about 0.8 s a page here: all 2000 would take over 20 minutes


def test_html_reading_stops_at_the_character_limit(tmp_path):
    path = tmp_path / "long.html"
    path.write_text("<html><body>" + "<p>Some words here.</p>" * 200_000 + "</body></html>", "utf-8")
    with pytest.raises(InputError, match=r"^'long.html' holds more than 100,000 characters of text"):
        read_document(path, limits=DocumentLimits(max_chars=100_000))


def docx_parts(path: Path, parts: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as package:
        for part, data in parts.items():
            package.writestr(part, data)
    return path


BODY = f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>Text.</w:t></w:r></w:p></w:body></w:document>'.encode()


@pytest.mark.parametrize("make, message", [
    (lambda d: docx_parts(d / "x.docx", {"word/document.xml": BODY[:60]}),
     r"^'x.docx' is a damaged DOCX: its text could not be read \("),
    (lambda d: docx_parts(d / "x.docx", {"word/document.xml": b"<workbook><sheet/></workbook>"}),
     r"^'x.docx' is not a valid DOCX file \(its main part is a 'workbook' part, not a Word document\)"),
    (lambda d: docx_parts(d / "x.docx", {"word/document.xml": BODY}, zipfile.ZIP_BZIP2),
     r"^'x.docx' is not a valid DOCX file \(word/document.xml uses compression method 12\)"),
    (lambda d: docx_parts(d / "x.docx", {"notes.txt": b"hello"}),
     r"^'x.docx' is not a valid DOCX file \(it has no word/document.xml\)"),
    (lambda d: docx_parts(d / "x.docx", {f"p{n}": b"" for n in range(25_000)}, zipfile.ZIP_STORED),
     r"^'x.docx' is not a valid DOCX file \(its zip directory is \d.* MiB, too many parts\)"),
    (lambda d: docx_parts(d / "x.docx", {"_rels/.rels": b"<Relationships><Relationship"}),
     r"^'x.docx' is not a valid DOCX file \(_rels/.rels: "),
])
def test_every_docx_reader_error_is_a_message_naming_the_file(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        read_document(make(tmp_path))


HOSTILE_TEXT = ('See <img src="https://tracker.example/p.png"> and ![x](https://tracker.example/q.png) or '
                '[click](https://evil.example) &lt;b&gt; *bold* `code`\n# Not a heading\n| a | b |\n|---|---|\n'
                "1. not a list\n<script>alert(1)</script>")


def test_document_text_renders_as_text_in_markdown():
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(as_markdown_text(HOSTILE_TEXT))
    assert re.findall(r"<(\w+)", rendered) == ["p"], rendered  # one paragraph: no img, a, h1, table, ol, script
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert shown.split() == HOSTILE_TEXT.split()


@pytest.mark.real
@pytest.mark.browser
def test_the_ask_tab_shows_a_documents_html_as_text_and_fetches_nothing(tmp_path):
    """The answer (Markdown) and the sources (a table) show an <img> and a Markdown image from a document as
    written; the browser requests neither image."""
    import gradio as gr

    from assistant.ui import docs_panel
    from assistant.ui.i18n import build_i18n
    from tests.app_server import serving
    from tests.chromium import ask_on_page, chromium, upload_on_page

    doc = tmp_path / "lab.md"
    doc.write_text('# Lab\nThe centrifuge key hangs in cabinet nine <img src="http://127.0.0.1:9/tracker.png"> '
                   "![seen](http://127.0.0.1:9/markdown.png) beside the fume hood.\n", "utf-8")
    with gr.Blocks() as demo:
        docs_panel.build_docs_panel(None, None, DocumentLimits())
    with serving(demo, build_i18n(docs_panel.TRANSLATIONS)) as url, chromium() as browser:
        page = browser.new_page()
        fetched = []
        page.on("request", lambda request: fetched.append(request.url) if ":9/" in request.url else None)
        page.goto(url)
        upload_on_page(page, "docs", doc, "lab.md: 1 passages")
        answer = ask_on_page(page, "docs", "Where does the centrifuge key hang?")
        page.locator("#docs-sources", has_text="cabinet nine").wait_for(timeout=10_000)
        assert '<img src="http://127.0.0.1:9/tracker.png">' in answer
        assert "![seen](http://127.0.0.1:9/markdown.png)" in answer
        assert page.locator("#docs-answer img, #docs-sources img").count() == 0
        assert fetched == []


def measure_issue_files(folder: Path) -> None:
    """Build the issue-scale files in ``folder`` (about 1 GB of compression work) and print each one's cost."""
    cases = {"docx_text_100MB.docx": lambda p: docx_text_flood(p, 100 * MB),
             "docx_spaces_1GB.docx": lambda p: docx_space_flood(p, 1024 * MB),
             "docx_markup_100MB.docx": lambda p: docx_markup_flood(p, 100 * MB),
             "docx_lying_100MB.docx": lambda p: docx_lying_sizes(p, 100 * MB),
             "pdf_spaces_1GB_1page.pdf": lambda p: pdf_flate_bomb(p, 1024 * MB),
             "pdf_spaces_14x70MB.pdf": lambda p: pdf_flate_bomb(p, 70 * MB, pages=14),
             "pdf_text_70MB.pdf": lambda p: pdf_flate_bomb(p, 70 * MB, filler=b"(lorem ipsum) Tj "),
             "pdf_shared_2000x70MB.pdf": lambda p: pdf_flate_bomb(p, 70 * MB, pages=2000, shared=True),
             "pdf_form_5MBx4000.pdf": lambda p: pdf_form_bomb(p, 5 * MB, 4000),
             "pdf_text_run_1MB.pdf": lambda p: pdf_flate_bomb(p, MB, filler=b"(lorem ipsum) Tj "),
             "docx_runs_75MB.docx": lambda p: docx_with_body(p, [b"<w:p>", b"<w:r/>" * (75 * MB // 6), RUN_END]),
             "docx_paras_75MB.docx": lambda p: docx_markup_flood(p, 75 * MB)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in cases.items():
        path = folder / name
        if not path.exists():
            make(path)
        print(f"{name} ({path.stat().st_size / 1e3:.0f} KB): {read_in_child(path)}", flush=True)


if __name__ == "__main__":
    measure_issue_files(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-documents"))

"""The documents panel of the Ask tab and ``/docs_ask``: over HTTP with gradio_client (good and bad files in
one call), the upload handler's per-file report, and two browser sessions that never see each other's
documents.

    pytest tests/test_docs_panel.py -q                  # add -m "not browser" to skip Chromium
"""

from __future__ import annotations

import os

import gradio as gr
import pytest

from assistant.documents.index import DocumentIndex
from assistant.documents.readers import DocumentLimits
from assistant.ui import docs_panel, faq_tab
from assistant.faq.knowledge_base import load_builtin
from assistant.ui.i18n import build_i18n
from tests.app_server import serving
from tests.chromium import ask_on_page, chromium, two_sessions, upload_on_page
from tests.document_files import encrypted_pdf, scanned_pdf, text_pdf

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def served(tiny_loaded):
    with gr.Blocks() as demo:
        with gr.Tab("Ask (FAQ & documents)"):
            faq_tab.build_faq_tab(tiny_loaded, load_builtin())
            docs_panel.build_docs_panel(tiny_loaded, None, DocumentLimits(max_bytes=200_000))
    with serving(demo, build_i18n(faq_tab.TRANSLATIONS, docs_panel.TRANSLATIONS)) as url:
        yield url


def test_translations_cover_both_languages():
    assert set(docs_panel.TRANSLATIONS["en"]) == set(docs_panel.TRANSLATIONS["zh"])


def test_upload_reports_each_file_and_indexes_the_good_ones(tmp_uploads):
    tmp_path = tmp_uploads
    good = text_pdf(tmp_path / "guide.pdf", ["The backup folder is called vault-seven."])
    scan = scanned_pdf(tmp_path / "scan.pdf")
    locked = encrypted_pdf(tmp_path / "locked.pdf")
    big = tmp_path / "big.txt"
    big.write_text("words " * 50_000)
    index = DocumentIndex.in_memory()
    report = docs_panel.add_files(index, [str(good), str(scan), str(locked), str(big)], DocumentLimits(max_bytes=200_000))
    assert report[0] == "✓ guide.pdf: 1 passages"
    assert "'scan.pdf' has no text layer" in report[1] and "'locked.pdf' is encrypted" in report[2]
    assert "'big.txt' is 0.3 MB" in report[3]
    assert set(index.files().values()) == {"guide.pdf"}


def test_docs_ask_over_http_answers_with_sources_and_names_bad_files(served, tmp_path):
    from gradio_client import Client, handle_file

    good = text_pdf(tmp_path / "guide.pdf", ["Welcome.", "The backup folder is called vault-seven."])
    binary = tmp_path / "notes.txt"
    binary.write_bytes(b"\x00\xff\x00binary" * 40)
    client = Client(served, verbose=False)
    result = client.predict([handle_file(str(good)), handle_file(str(binary))], "What is the backup folder called?",
                            False, api_name="/docs_ask")
    assert "vault-seven" in result["answer"]
    assert result["sources"][0]["file"] == "guide.pdf" and result["sources"][0]["page"] == 2
    assert all(set(s) == {"file", "page", "text", "score"} for s in result["sources"])
    assert len(result["problems"]) == 1 and "'notes.txt' looks like a binary file" in result["problems"][0]
    # the files of one call are not kept: the next call without files has nothing to search
    empty = client.predict([], "What is the backup folder called?", False, api_name="/docs_ask")
    assert empty["sources"] == [] and "upload" in empty["answer"]
    with pytest.raises(Exception, match="empty question"):
        client.predict([handle_file(str(good))], "  ", False, api_name="/docs_ask")


@pytest.mark.browser
def test_uploaded_documents_stay_in_their_browser_session(served, tmp_path):
    doc = tmp_path / "office.md"
    doc.write_text("# Office\n## Coffee\nThe espresso machine stands on the fourth floor beside the library.\n", "utf-8")
    with chromium() as browser:
        owner, other = two_sessions(browser, served, "#docs-status")
        upload_on_page(owner, "docs", doc, "office.md: 1 passages")

        assert "fourth floor" in ask_on_page(owner, "docs", "Where is the espresso machine?")
        owner.locator("#docs-sources", has_text="Office > Coffee").wait_for(timeout=10_000)
        assert "fourth floor" not in ask_on_page(other, "docs", "Where is the espresso machine?")
        assert "(none)" in other.locator("#docs-status").inner_text()

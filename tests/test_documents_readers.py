"""Document readers and passages on real files written in code: text, page and heading kept; every kind of
bad input refused with a message naming the file and the fix.

    pytest tests/test_documents_readers.py -q
"""

from __future__ import annotations

import pytest

from assistant.documents.passages import PassageSettings, file_hash, split_passages, units
from assistant.documents.readers import DocumentLimits, read_document
from assistant.core.errors import InputError
from tests.document_files import docx_file, docx_with_body, encrypted_pdf, scanned_pdf, text_pdf


def test_pdf_keeps_page_numbers(tmp_path):
    path = text_pdf(tmp_path / "manual.pdf", ["Installation needs Python 3.11.", "The server listens on port 7860."])
    sections = read_document(path)
    assert [s.page for s in sections] == [1, 2]
    assert "port 7860" in sections[1].text and "port 7860" not in sections[0].text


def test_docx_markdown_and_html_keep_their_headings(tmp_path):
    docx = docx_file(tmp_path / "handbook.docx", [("Backups", "Copy the data folder every night."),
                                                  ("Passwords", "Wrong passwords are throttled.")])
    by_heading = {s.heading: s.text for s in read_document(docx)}
    assert "Copy the data folder" in by_heading["Handbook > Backups"]
    md = tmp_path / "notes.md"
    md.write_text("# Course\nIntro.\n## 第二讲：数据准备\n数据质量比数量更重要。\n```\n# not a heading\n```\n", "utf-8")
    sections = read_document(md)
    assert sections[-1].heading == "Course > 第二讲：数据准备" and "# not a heading" in sections[-1].text
    html = tmp_path / "page.html"
    html.write_text("<html><head><title>T</title><script>var hidden = 1;</script></head><body><h1>Guide</h1>"
                    "<p>Start the app.</p><h2>Ports</h2><p>Use &lt;port&gt; 7861.</p></body></html>", "utf-8")
    sections = read_document(html)
    assert ("Guide > Ports", "Use <port> 7861.") in [(s.heading, s.text.strip()) for s in sections]
    assert all("hidden" not in s.text for s in sections)


def test_gb18030_text_is_read(tmp_path):
    path = tmp_path / "中文.txt"
    path.write_bytes("微调需要准备数据。".encode("gb18030"))
    assert read_document(path)[0].text == "微调需要准备数据。"


@pytest.mark.parametrize("make, words", [
    (lambda d: scanned_pdf(d / "scan.pdf"), ["scan.pdf", "no text layer", "OCR"]),
    (lambda d: encrypted_pdf(d / "locked.pdf"), ["locked.pdf", "encrypted", "without a password"]),
    (lambda d: (d / "empty.md").write_bytes(b"") and d / "empty.md" or d / "empty.md", ["empty.md", "empty"]),
    (lambda d: (d / "blank.txt").write_text(" \n\n  ") and d / "blank.txt", ["blank.txt", "blank"]),
    (lambda d: (d / "data.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50) and d / "data.txt", ["data.txt", "binary"]),
    (lambda d: (d / "fake.pdf").write_bytes(b"PK\x03\x04 not a pdf") and d / "fake.pdf", ["fake.pdf", "not a PDF"]),
    (lambda d: (d / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage") and d / "broken.pdf", ["broken.pdf", "damaged"]),
    (lambda d: (d / "bad.docx").write_bytes(b"not a zip") and d / "bad.docx", ["bad.docx", "not a valid DOCX"]),
    (lambda d: (d / "sheet.xlsx").write_bytes(b"x") and d / "sheet.xlsx", ["sheet.xlsx", "unsupported", "PDF"]),
])
def test_bad_documents_are_refused_by_name_with_the_fix(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        read_document(path)
    for word in words:
        assert word in str(caught.value)


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 3000)
    with pytest.raises(InputError, match=r"'big.txt' is 0.0 MB; documents are limited to"):
        read_document(path, limits=DocumentLimits(max_bytes=1000))


def test_passages_keep_file_page_heading_and_stay_within_size(tmp_path):
    md = tmp_path / "notes.md"
    long_section = " ".join(f"Sentence number {i} talks about adapters and checkpoints." for i in range(60))
    md.write_text(f"# Guide\n## Long\n{long_section}\n## Short\nOne line only.\n", "utf-8")
    passages = split_passages(read_document(md), "notes.md", file_hash(md.read_bytes()), PassageSettings(40, 80))
    assert len({p.number for p in passages}) == len(passages) and passages[0].number == 0
    long = [p for p in passages if p.heading == "Guide > Long"]
    assert len(long) > 3 and all(units(p.text) <= 80 for p in long)
    assert " ".join(p.text for p in long) == " ".join(long_section.split())  # nothing lost, nothing repeated
    short = [p for p in passages if p.heading == "Guide > Short"]
    assert short[0].text == "One line only." and short[0].where == "Guide > Short"
    assert short[0].searchable.startswith("Guide > Short\n")


def test_chinese_passages_split_at_sentence_ends(tmp_path):
    text = "".join(f"第{i}句讲的是学习率和训练轮数的设置方法。" for i in range(40))
    path = tmp_path / "zh.txt"
    path.write_text(text, "utf-8")
    passages = split_passages(read_document(path), "zh.txt", "h", PassageSettings(60, 120))
    assert len(passages) > 3 and all(p.text.endswith("。") for p in passages)
    assert "".join(p.text for p in passages) == text


def test_a_real_docx_keeps_tables_in_place_and_headings_by_style_name(tmp_path):
    from docx import Document

    document = Document()
    document.add_heading("Prices", level=1)
    document.add_paragraph("The table below lists them.")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Plan", (0, 1): "Cost", (1, 0): "Basic", (1, 1): "5 EUR"}.items():
        table.cell(row, col).text = text
    document.add_heading("Support", level=1)
    document.add_paragraph("Write to the help desk.")
    document.save(tmp_path / "prices.docx")
    sections = {s.heading: s.text for s in read_document(tmp_path / "prices.docx")}
    assert sections == {"Prices": "The table below lists them.\nPlan | Cost\nBasic | 5 EUR",
                        "Support": "Write to the help desk."}


def test_a_docx_text_box_is_read_once_not_again_from_its_fallback(tmp_path):
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    box = "<w:txbxContent><w:p><w:r><w:t>Boxed note.</w:t></w:r></w:p></w:txbxContent>"
    body = (f'<w:p><w:r><w:t>Before.</w:t></w:r><w:r><mc:AlternateContent xmlns:mc="{mc}"><mc:Choice Requires="wps">'
            f"{box}</mc:Choice><mc:Fallback>{box}</mc:Fallback></mc:AlternateContent></w:r></w:p>")
    sections = read_document(docx_with_body(tmp_path / "box.docx", [body.encode()]))
    assert sections[0].text.count("Boxed note.") == 1 and "Before." in sections[0].text

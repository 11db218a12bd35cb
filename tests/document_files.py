"""Real document files written from code for the document tests: PDFs (with text, scanned-like, encrypted),
DOCX with headings, HTML, Markdown."""

from __future__ import annotations

from pathlib import Path


def text_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path, pages: int = 2) -> Path:
    """Pages that hold only drawings (what a scan without OCR looks like to a text extractor)."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.set_fill_color(120, 120, 120)
        pdf.rect(20, 20, 150, 200, style="F")
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = text_pdf(path.with_suffix(".plain.pdf"), ["A confidential page about salaries."])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    with open(path, "wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path


def docx_file(path: Path, sections: list[tuple[str, str]]) -> Path:
    from docx import Document

    document = Document()
    document.add_heading("Handbook", level=0)
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    document.save(str(path))
    return path


# Hostile files: small on disk, huge once unpacked (issue 24). Each is written in streamed chunks, so the
# test that writes one never holds the unpacked size either.

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                  '2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                  'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
                  '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
                  'document.main+xml"/></Types>')
_PACKAGE_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                 'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                 'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
MB = 2**20


def docx_with_body(path: Path, body_chunks, level: int = 9) -> Path:
    """A minimal DOCX (no styles part) whose body is the concatenated ``body_chunks`` (bytes), streamed
    into word/document.xml."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _PACKAGE_RELS)
        with package.open("word/document.xml", "w") as part:
            part.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>'.encode())
            for chunk in body_chunks:
                part.write(chunk)
            part.write(b"</w:body></w:document>")
    return path


def repeated(unit: bytes, total: int, chunk: int = 4 * MB):
    """``unit`` repeated to ``total`` bytes, yielded in chunks of about ``chunk`` bytes."""
    block = unit * max(1, chunk // len(unit))
    for _ in range(total // len(block)):
        yield block
    yield unit * ((total % len(block)) // len(unit))


def docx_text_flood(path: Path, xml_bytes: int) -> Path:
    """Paragraphs of ordinary text, ``xml_bytes`` of XML in all (100 MB packs into ~300 KB)."""
    return docx_with_body(path, repeated(b"<w:p><w:r><w:t>lorem ipsum dolor sit</w:t></w:r></w:p>", xml_bytes))


def docx_markup_flood(path: Path, xml_bytes: int) -> Path:
    """Empty paragraphs only: ``xml_bytes`` of markup and no text at all."""
    return docx_with_body(path, repeated(b"<w:p/>", xml_bytes))


def docx_space_flood(path: Path, spaces: int) -> Path:
    """One paragraph of text, then ``spaces`` spaces of XML whitespace (1 GB packs into ~1 MB)."""
    from itertools import chain

    first = b"<w:p><w:r><w:t>The real text.</w:t></w:r></w:p>"
    return docx_with_body(path, chain([first], repeated(b" ", spaces, 16 * MB)))


def docx_lying_sizes(path: Path, xml_bytes: int, declared: int = 1000) -> Path:
    """A text flood whose zip headers (central directory and local header) claim that word/document.xml
    unpacks to ``declared`` bytes."""
    import struct
    import zipfile

    docx_text_flood(path, xml_bytes)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as package:
        local = package.getinfo("word/document.xml").header_offset
        central = package.start_dir
    struct.pack_into("<I", data, local + 22, declared)
    while data[central:central + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, central + 28)
        if data[central + 46:central + 46 + name_length] == b"word/document.xml":
            struct.pack_into("<I", data, central + 24, declared)
        central += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(data))
    return path


def _flate_stream(inflated: int, head: bytes, filler: bytes, extra: bytes = b"") -> bytes:
    """A FlateDecode stream object that unpacks to ``inflated`` bytes: ``head``, ``filler`` repeated, " ET"."""
    import zlib

    packer = zlib.compressobj(9)
    packed = bytearray(packer.compress(head))
    for chunk in repeated(filler, inflated - len(head) - 3):
        packed += packer.compress(chunk)
    packed += packer.compress(b" ET") + packer.flush()
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n%s\nendstream" % (len(packed), extra, packed)


def _write_pdf(path: Path, objects: list[bytes]) -> Path:
    """Objects 1.. as given (1 must be the catalog), with a correct cross-reference table."""
    with open(path, "wb") as out:
        out.write(b"%PDF-1.4\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
        out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
        out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return path


PDF_HEAD = b"BT /F1 12 Tf 72 720 Td (The real text.) Tj ET BT /F1 12 Tf 72 700 Td "
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_flate_bomb(path: Path, inflated: int, pages: int = 1, filler: bytes = b" ", shared: bool = False) -> Path:
    """A PDF whose page content streams (FlateDecode) each unpack to ``inflated`` bytes: a line of real text,
    then ``filler`` repeated (spaces: nothing to extract; ``b"(lorem ipsum) Tj "``: text). ``shared``: every
    page points at one stream object; otherwise each page has its own copy (same bytes, separate objects)."""
    streams = 1 if shared else pages
    first_page = 4 + streams
    kids = b" ".join(b"%d 0 R" % (first_page + n) for n in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages), FONT]
    objects += [_flate_stream(inflated, PDF_HEAD, filler)] * streams
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                b"/Contents %d 0 R >>" % (4 + (0 if shared else n)) for n in range(pages)]
    return _write_pdf(path, objects)


def pdf_form_bomb(path: Path, form_bytes: int, uses: int) -> Path:
    """One page whose small content draws one form XObject ``uses`` times; the form unpacks to ``form_bytes``
    (pypdf parses a form again at each use)."""
    content = b"BT /F1 12 Tf 72 720 Td (The real text.) Tj ET " + b"/X0 Do " * uses
    form = _flate_stream(form_bytes, b"BT /F1 12 Tf 72 700 Td ", b" ",
                         b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> ")
    return _write_pdf(path, [
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [6 0 R] /Count 1 >>", FONT, form,
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> "
        b"/XObject << /X0 4 0 R >> >> /Contents 5 0 R >>"])

"""The document index on the real MiniLM and a real Qdrant (local mode): hybrid search finds the passage,
files are added and deleted by content hash, the on-disk index reopens without re-embedding, folder sync,
answers with sources, and session collections that never see each other.

    pytest tests/test_documents_index.py -q
"""

from __future__ import annotations

import pytest

from assistant.documents import answer as doc_answer
from assistant.documents.index import DocumentIndex
from assistant.faq.embeddings import SentenceEncoder, default_encoder
from assistant.core.model_sources import embedded_path
from tests.document_files import text_pdf

pytestmark = pytest.mark.real

MANUAL = """# Studio manual
## Starting
Start the server with python app.py. It listens on port 7860 by default.
## Passwords
After five failed attempts a client must wait thirty seconds before trying again.
## Backups
To back up the studio, copy the data folder while no training job is running.
"""
COURSE = """# 微调课程
## 数据准备
数据要按八比一比一的比例划分为训练集、验证集和测试集。
## 学习率
全参数微调的学习率通常在一乘十的负五次方左右，训练轮数一般设为二到三轮。
"""


class CountingEncoder(SentenceEncoder):
    """The real MiniLM, counting the texts it embeds."""

    def __init__(self):
        super().__init__(embedded_path("minilm-l6-v2"))
        self.texts = 0

    def encode(self, texts):
        self.texts += len(texts)
        return super().encode(texts)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "manual.md").write_text(MANUAL, "utf-8")
    (folder / "course.md").write_text(COURSE, "utf-8")
    return folder


def test_hybrid_search_finds_english_and_chinese_passages_with_their_place(docs):
    index = DocumentIndex.in_memory(encoder=default_encoder())
    for path in docs.iterdir():
        index.add_file(path)
    hit = index.search("How long do I wait after too many wrong passwords?", 3)[0]
    assert hit.passage.file == "manual.md" and hit.passage.heading == "Studio manual > Passwords"
    assert "thirty seconds" in hit.passage.text and 0 < hit.score <= 1 and hit.dense > 0
    hit = index.search("训练集和验证集按什么比例划分？", 3)[0]
    assert hit.passage.file == "course.md" and "八比一比一" in hit.passage.text


def test_answer_lists_sources_and_says_when_not_covered(docs, tmp_path):
    index = DocumentIndex.in_memory(encoder=default_encoder())
    pdf = text_pdf(tmp_path / "guide.pdf", ["Welcome to the guide.", "The backup folder is called vault-seven."])
    index.add_file(pdf)
    result = doc_answer.answer("What is the backup folder called?", [index])
    assert "vault-seven" in result["answer"]
    assert result["sources"][0] == {"file": "guide.pdf", "page": 2, "text": result["sources"][0]["text"],
                                    "score": result["sources"][0]["score"]}
    off_topic = doc_answer.answer("What is the capital of Australia?", [index])
    assert off_topic["sources"] == [] and "do not cover" in off_topic["answer"]
    assert "upload" in doc_answer.answer("Anything?", [DocumentIndex.in_memory(encoder=default_encoder())])["answer"]


def test_files_are_added_once_by_content_and_deleted_by_hash(docs):
    encoder = CountingEncoder()
    index = DocumentIndex.in_memory(encoder=encoder)
    first = index.add_file(docs / "manual.md")
    embedded = encoder.texts
    again = index.add_file(docs / "manual.md", "renamed-copy.md")  # same bytes, other name: not indexed twice
    assert again.already_indexed and encoder.texts == embedded and len(index) == first.passages
    index.add_file(docs / "course.md")
    assert index.delete_file(first.file_hash) == first.passages
    assert set(index.files().values()) == {"course.md"}
    assert all(h.passage.file == "course.md" for h in index.search("port 7860 server", 5))


def test_the_on_disk_index_reopens_without_re_embedding_and_syncs_changes(docs, tmp_path):
    store = tmp_path / "index"
    encoder = CountingEncoder()
    index = DocumentIndex.open(store, encoder=encoder)
    report = index.sync_folder(docs)
    assert sorted(report) == ["indexed: course.md (2 passages)", "indexed: manual.md (3 passages)"]
    index.close()
    encoder.texts = 0
    reopened = DocumentIndex.open(store, encoder=encoder)
    assert len(reopened) == 5 and reopened.sync_folder(docs) == [] and encoder.texts == 0  # nothing re-read
    assert "thirty seconds" in reopened.search("wrong passwords wait", 1)[0].passage.text
    (docs / "course.md").unlink()
    (docs / "manual.md").write_text(MANUAL + "## Logs\nLogs rotate every Sunday at midnight.\n", "utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    report = reopened.sync_folder(docs)
    assert "indexed: manual.md (4 passages)" in report
    assert any(line.startswith("removed: course.md") for line in report)
    assert any(line.startswith("skipped: 'broken.pdf'") for line in report)
    assert set(reopened.files().values()) == {"manual.md"} and len(reopened) == 4
    reopened.close()


def test_one_sessions_documents_are_never_visible_to_another(docs):
    alice = DocumentIndex.in_memory(encoder=default_encoder())
    bob = DocumentIndex.in_memory(encoder=default_encoder())
    alice.add_file(docs / "manual.md")
    assert bob.search("wrong passwords wait thirty seconds", 3) == [] and len(bob) == 0
    assert doc_answer.answer("How long must I wait after wrong passwords?", [bob])["sources"] == []
    assert doc_answer.answer("How long must I wait after wrong passwords?", [alice])["sources"]

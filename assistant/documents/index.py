"""A document index: passages and their MiniLM vectors in a Qdrant collection, searched hybrid
(vectors + BM25 over jieba/English terms), with files added and deleted by content hash.

Qdrant runs embedded in this process (``QdrantClient(":memory:")`` for a browser session's uploads,
``QdrantClient(path=...)`` for the operator's folder, persisted on disk and opened again at the next
start without re-embedding anything) or as a server (``QdrantClient(url=...)``): the same API, so an
operator outgrowing one machine points ``--qdrant-url`` at a server. BM25 statistics are rebuilt in
memory from the stored passages' terms (no re-tokenising) when the set of files changes.

    index = DocumentIndex.in_memory()
    index.add_file("manual.pdf")
    for hit in index.search("How do I reset the password?"):
        print(hit.score, hit.passage.file, hit.passage.where)
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from rank_bm25 import BM25Okapi

from assistant.documents.passages import Passage, PassageSettings, file_hash, split_passages
from assistant.documents.readers import DocumentLimits, read_document
from assistant.documents.search_settings import DocSearchSettings
from assistant.core.language import chinese_or_english
from assistant.search_terms import terms

COLLECTION = "passages"


class LuceneBM25(BM25Okapi):
    """BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)), always positive: Okapi's idf is 0 or
    negative for a term in half the passages or more, which leaves a session of one or two short files
    with no sparse signal at all."""

    def _calc_idf(self, nd):
        import math

        self.idf = {word: math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5)) for word, freq in nd.items()}


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    dense: float
    sparse: float


@dataclass(frozen=True)
class Added:
    name: str
    file_hash: str
    passages: int
    already_indexed: bool = False


class DocumentIndex:
    """One Qdrant collection of passages. Thread-safe: one operation at a time."""

    def __init__(self, client, collection: str = COLLECTION, encoder=None, settings: DocSearchSettings | None = None,
                 passage_settings: PassageSettings | None = None):
        self.client, self.collection = client, collection
        self.settings, self.passage_settings = settings or DocSearchSettings(), passage_settings or PassageSettings()
        self._encoder = encoder
        self._lock = threading.RLock()
        self._passages: dict[str, tuple[Passage, list[str]]] = {}
        self._bm25 = None
        self._ids: list[str] = []
        self._load()

    @classmethod
    def in_memory(cls, **kwargs) -> "DocumentIndex":
        from qdrant_client import QdrantClient

        return cls(QdrantClient(":memory:"), **kwargs)

    @classmethod
    def open(cls, path: str | Path | None = None, url: str | None = None, **kwargs) -> "DocumentIndex":
        """On disk at ``path`` (created if needed), or in the Qdrant server at ``url``."""
        from qdrant_client import QdrantClient

        if url:
            return cls(QdrantClient(url=url), **kwargs)
        Path(path).mkdir(parents=True, exist_ok=True)
        return cls(QdrantClient(path=str(path)), **kwargs)

    @property
    def encoder(self):
        if self._encoder is None:
            from assistant.faq.embeddings import default_encoder

            self._encoder = default_encoder()
        return self._encoder

    def _load(self) -> None:
        """Create the collection, or read back the passages a previous run stored in it."""
        from qdrant_client import models

        if not self.client.collection_exists(self.collection):
            self.client.create_collection(self.collection, vectors_config=models.VectorParams(
                size=self.encoder.dimension, distance=models.Distance.COSINE))
            return
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, limit=1024, offset=offset, with_payload=True,
                                                with_vectors=False)
            for point in points:
                self._passages[str(point.id)] = _from_payload(point.payload)
            if offset is None:
                break
        self._bm25 = None

    def __len__(self) -> int:
        return len(self._passages)

    def files(self) -> dict[str, str]:
        """{content hash: file name} of the indexed files."""
        with self._lock:
            return {p.file_hash: p.file for p, _ in self._passages.values()}

    def add_file(self, path: str | Path, name: str | None = None, limits: DocumentLimits | None = None) -> Added:
        """Read, split, embed and store one document; a file whose content is already indexed is skipped.
        Bad documents raise InputError (naming the file) and leave the index unchanged."""
        path = Path(path)
        name = name or path.name
        content_hash = file_hash(path.read_bytes())
        with self._lock:
            if content_hash in self.files():
                return Added(name, content_hash, self._count(content_hash), already_indexed=True)
        passages = split_passages(read_document(path, name, limits), name, content_hash, self.passage_settings)
        vectors = self.encoder.encode([p.searchable for p in passages])
        return self._store(passages, vectors)

    def _store(self, passages: list[Passage], vectors: torch.Tensor) -> Added:
        from qdrant_client import models

        rows = {str(uuid.uuid5(uuid.NAMESPACE_URL, f"{p.file_hash}:{p.number}")): (p, terms(p.searchable))
                for p in passages}
        points = [models.PointStruct(id=pid, vector=vector.tolist(), payload=_payload(p, t))
                  for (pid, (p, t)), vector in zip(rows.items(), vectors)]
        with self._lock:
            for start in range(0, len(points), 256):
                self.client.upsert(self.collection, points=points[start:start + 256])
            self._passages.update(rows)
            self._bm25 = None
        return Added(passages[0].file, passages[0].file_hash, len(passages))

    def _count(self, content_hash: str) -> int:
        return sum(p.file_hash == content_hash for p, _ in self._passages.values())

    def delete_file(self, content_hash: str) -> int:
        """Remove a file's passages; returns how many there were."""
        from qdrant_client import models

        with self._lock:
            ids = [pid for pid, (p, _) in self._passages.items() if p.file_hash == content_hash]
            if ids:
                self.client.delete(self.collection, points_selector=models.PointIdsList(points=ids))
                for pid in ids:
                    del self._passages[pid]
                self._bm25 = None
            return len(ids)

    def sync_folder(self, folder: str | Path, limits: DocumentLimits | None = None) -> list[str]:
        """Make the index hold exactly the readable documents in ``folder`` (recursively): new or changed
        files are added, removed ones deleted, unchanged ones kept as stored. Returns one line per change or
        problem."""
        from assistant.documents.readers import TYPES
        from assistant.core.errors import InputError

        report, present = [], set()
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in TYPES):
            try:
                added = self.add_file(path, str(path.relative_to(folder)), limits)
            except InputError as exc:
                report.append(f"skipped: {exc}")
                continue
            present.add(added.file_hash)
            if not added.already_indexed:
                report.append(f"indexed: {added.name} ({added.passages} passages)")
        for content_hash, name in self.files().items():
            if content_hash not in present:
                self.delete_file(content_hash)
                report.append(f"removed: {name} (no longer in the folder, or changed)")
        return report

    def _sparse_model(self) -> LuceneBM25 | None:
        if self._bm25 is None and self._passages:
            self._ids = list(self._passages)
            s = self.settings
            self._bm25 = LuceneBM25([self._passages[i][1] for i in self._ids], k1=s.bm25_k1, b=s.bm25_b)
        return self._bm25

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """The ``k`` best passages, best first; score = w * cosine + (1 - w) * BM25 coverage, where coverage
        is BM25 over the most a passage of average length gets with each query term once (in [0, 1])."""
        from qdrant_client import models

        k = k or self.settings.top_k
        with self._lock:
            bm25 = self._sparse_model()
            if bm25 is None:
                return []
            ids, s = self._ids, self.settings
            query_terms = terms(query)
            unseen_idf = max(bm25.idf.values(), default=1.0)
            # One occurrence of every query term in a passage of average length scores 1 (clamped above):
            # passages are long next to FAQ entries, and a term rarely repeats in one.
            bound = sum(bm25.idf.get(t, unseen_idf) for t in query_terms)
            sparse = torch.tensor(bm25.get_scores(query_terms) / bound if bound > 0 else [0.0] * len(ids),
                                  dtype=torch.float32).clamp(0, 1)
            dense = torch.zeros(len(ids))
            weight = s.dense_weight(chinese_or_english(query))
            if weight > 0:
                position = {pid: i for i, pid in enumerate(ids)}
                found = self.client.query_points(
                    self.collection, query=self.encoder.encode([query])[0].tolist(), limit=s.dense_candidates,
                    query_filter=models.Filter(must=[models.FieldCondition(key="lang", match=models.MatchValue(
                        value="en"))]))  # MiniLM is an English encoder: Chinese passages are matched by BM25
                for point in found.points:
                    if (i := position.get(str(point.id))) is not None:
                        dense[i] = max(float(point.score), 0.0)
            fused = weight * dense + (1 - weight) * sparse
            top = fused.topk(min(k, len(ids)))
            return [Hit(self._passages[ids[i]][0], round(float(fused[i]), 4), float(dense[i]), float(sparse[i]))
                    for i in top.indices.tolist()]

    def close(self) -> None:
        self.client.close()


def search_all(indexes: list[DocumentIndex], query: str, k: int) -> list[Hit]:
    """The best ``k`` passages over several indexes (a session's uploads and the operator's folder)."""
    hits = [hit for index in indexes if index is not None for hit in index.search(query, k)]
    return sorted(hits, key=lambda h: -h.score)[:k]


def _payload(p: Passage, passage_terms: list[str]) -> dict:
    return {"file": p.file, "file_hash": p.file_hash, "number": p.number, "text": p.text, "page": p.page,
            "heading": p.heading, "lang": chinese_or_english(p.text), "terms": passage_terms}


def _from_payload(payload: dict) -> tuple[Passage, list[str]]:
    return (Passage(payload["file"], payload["file_hash"], int(payload["number"]), payload["text"], payload.get("page"),
                    payload.get("heading") or ""), list(payload.get("terms") or []))

"""Sentence embeddings from the embedded all-MiniLM-L6-v2, computed as sentence-transformers does:
BERT token states -> mean over real (non-padding) tokens -> L2 normalisation. Texts are cut at
256 word pieces (the model's ``max_seq_length``) and encoded in batches.

    python -m assistant.faq.embeddings "What is LoRA?" "LoRA 是什么？"   # print the cosine similarity
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from assistant.core.errors import ModelLoadError
from assistant.core.model_sources import DEFAULT_ENCODER, embedded_path


@dataclass
class EncoderSettings:
    """How texts are turned into vectors."""

    max_length: int = 256
    """Word pieces per text; longer texts are truncated (all-MiniLM-L6-v2 was trained on 256)."""
    batch_size: int = 32
    """Texts per forward pass when indexing a knowledge base."""

    def __post_init__(self):
        if not 8 <= int(self.max_length) <= 512:
            raise ValueError(f"max_length must be between 8 and 512; got {self.max_length}.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size}.")


class SentenceEncoder:
    """A BERT-style encoder that maps texts to unit-length vectors (cosine = dot product)."""

    def __init__(self, folder: str | Path, settings: EncoderSettings | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.settings = settings or EncoderSettings()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self.model = AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()
        except OSError as exc:
            raise ModelLoadError(f"Could not load the sentence encoder from '{folder}': {exc}") from exc
        self.dimension = int(self.model.config.hidden_size)
        self._lock = threading.Lock()  # one forward pass at a time: the CPU is shared anyway

    def encode(self, texts: list[str]) -> torch.Tensor:
        """A float32 tensor of shape (len(texts), dimension), each row L2-normalised."""
        if not texts:
            return torch.zeros((0, self.dimension))
        # Batch texts of similar length together (less padding), then restore the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows = []
        step = self.settings.batch_size
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), step):
                batch = self.tokenizer(
                    [texts[i] for i in order[start:start + step]], padding=True, truncation=True,
                    max_length=self.settings.max_length, return_tensors="pt",
                )
                states = self.model(**batch).last_hidden_state
                rows.append(mean_pool(states, batch["attention_mask"]))
        vectors = torch.empty((len(texts), self.dimension))
        vectors[torch.tensor(order)] = torch.cat(rows).float()
        return torch.nn.functional.normalize(vectors, p=2, dim=1)


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each text, ignoring padding positions."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@lru_cache(maxsize=1)
def default_encoder() -> SentenceEncoder:
    """The embedded all-MiniLM-L6-v2, loaded once per process (about one second)."""
    return SentenceEncoder(embedded_path(DEFAULT_ENCODER))


if __name__ == "__main__":
    texts = sys.argv[1:] or ["What is LoRA?", "How does low-rank adaptation work?"]
    vectors = default_encoder().encode(texts)
    for i, text in enumerate(texts[1:], start=1):
        print(f"{float(vectors[0] @ vectors[i]):.3f}  {texts[0]!r} vs {text!r}")

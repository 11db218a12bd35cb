"""Serving engines behind one small interface, so chat and the tasks never ask which one runs.

- ``LlamaCppEngine`` (``llama_cpp_engine``): llama-cpp-python on a GGUF file; the CPU engine. Decodes several
  requests together (continuous batching, ``llama_cpp_batch``) and keeps each conversation's KV cache.
- ``TransformersEngine`` (``transformers_engine``): a transformers model (bitsandbytes nf4 / int8 or
  float) with PEFT adapters; CUDA, models llama.cpp cannot load, training and evaluation. One request at a time.

``Engine`` is what both offer, on token ids built by the model's Hugging Face tokenizer. ``generate`` needs no
lock (each engine guards itself); the other methods expect the caller to hold ``LoadedModel.lock``, with the
adapter chosen by an ``adapter`` block around them (``ServedAdapters.using``).
``assistant.core.loading.load_served_model`` picks the engine (``--engine auto|llama.cpp|transformers``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol


class Engine(Protocol):
    name: str
    concurrency: int
    """How many ``generate`` calls decode at once (the rest wait in order)."""

    def generate(self, ids: list[int], settings, stop_event: threading.Event | None = None,
                 adapter=None) -> Iterator[int]:
        """Token ids of a reply to ``ids`` sampled with ``settings`` (``GenerationSettings``) under ``adapter`` (an
        adapter's info, or None for the base); ends on the end token, the limit, or ``stop_event``."""

    def decode(self, ids: list[int], settings, stop_event: threading.Event, on_token: Callable[[int], None]) -> None:
        """``generate`` under the current ``adapter`` block, one callback per token."""

    def greedy(self, prompts: Sequence[list[int]], max_new_tokens: int,
               stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy replies (text) to several prompts."""

    def score(self, prompt_ids: list[int], continuations: Sequence[Sequence[int]]) -> list[float]:
        """Summed log-probabilities of candidate continuations after the prompt."""

    def adapter(self, info) -> AbstractContextManager:
        """A block in which a LoRA adapter (or none, for ``None``) is active."""

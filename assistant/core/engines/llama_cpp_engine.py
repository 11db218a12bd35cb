"""The llama.cpp engine: a GGUF model served by llama-cpp-python, many requests at once, GGUF LoRA adapters per request.

The CPU engine whenever the model exists as GGUF. Prompts are built and token ids decoded by the
same Hugging Face tokenizer the transformers engine uses (read from the GGUF file), so both engines
see identical ids. Replies are decoded together in one context by ``llama_cpp_batch`` (continuous batching,
``--parallel`` sequences); each conversation's KV cells stay cached between turns (``llama_cpp_sequences``).
Adapters are converted once to GGUF LoRA (``assistant.core.gguf.lora_file``), loaded once on the shared base and
switched per batch step with ``llama_set_adapters_lora``.

Callers need no lock: the engine's own ``lock`` guards the context. ``decode``, ``greedy`` and ``score`` run under
the innermost ``adapter`` block (the caller holds ``loaded.lock`` around it, as ``ServedAdapters.using`` does);
``generate`` takes the adapter as an argument.

    python -m assistant.core.generation "What is LoRA?"   # one reply from the embedded model, through this engine
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from assistant.core.engines.llama_cpp_sampling import sampler_chain
from assistant.core.errors import InputError, ModelLoadError, UserError

DEFAULT_CONTEXT = 4096
"""Context tokens allocated unless asked for more (``--context``): llama.cpp allocates the whole KV
cache up front, and the model's full window (8192 for SmolLM2) costs memory that few chats use."""

N_BATCH = 512
"""Tokens per ``llama_decode`` (prompt chunks and the running sequences' next tokens together)."""

_GGUF_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
                    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
                    17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def cpu_threads() -> int:
    """Threads for llama.cpp: the cores this process may run on (its default is half of them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _trained_context(path: Path) -> int:
    """``<arch>.context_length`` from the file's header (llama.cpp would allocate it all by default). Read with the
    project's header reader, which skips the vocabulary: gguf's ``GGUFReader`` parses every token and merge, about
    10 s for Qwen2.5's 151k-token vocabulary on 2 cores, at every load."""
    from assistant.core.gguf.header import read_header

    try:
        header = read_header(path)
    except UserError as exc:  # not a GGUF file, truncated, unknown version
        raise ValueError(f"its GGUF header cannot be read ({exc})") from exc
    arch = header.metadata.get("general.architecture")
    return int(header.metadata.get(f"{arch}.context_length") or 2048)


def default_parallel(context: int, cores: int | None = None) -> int:
    """Sequences decoded together when ``--parallel`` is not given: two per core (decode on a small model is
    bound by memory bandwidth, so a few more rows cost little), at most 8, and at most 16,384 KV cells in all
    (each slot may fill the whole per-request ``context``)."""
    return max(1, min(8, 2 * (cores or cpu_threads()), 16_384 // max(context, 1)))


class LlamaCppEngine:
    """One llama.cpp context with ``slots`` sequences decoded together (``llama_cpp_batch``).

    ``context_window`` is what one request may use; the unified KV cache holds ``context_window * slots`` cells,
    shared by the running sequences and the idle ones kept for later turns (``llama_cpp_sequences``).
    """

    name = "llama.cpp"

    def __init__(self, gguf_path: str | Path, tokenizer, context: int | None = None, threads: int | None = None,
                 parallel: int | None = None):
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose
        from llama_cpp._utils import suppress_stdout_stderr

        from assistant.core.engines.llama_cpp_batch import BatchScheduler
        from assistant.core.engines.llama_cpp_sequences import SequenceCache

        self.lib = llama_cpp
        self.path = Path(gguf_path)
        self.tokenizer = tokenizer
        threads = threads or cpu_threads()
        set_verbose(False)
        try:
            self.context_window = min(context or DEFAULT_CONTEXT, _trained_context(self.path))
            self.slots = int(parallel or default_parallel(self.context_window))
            self.model = _internals.LlamaModel(path_model=str(self.path), params=llama_cpp.llama_model_default_params(),
                                               verbose=False)
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = self.context_window * self.slots
            params.n_batch = params.n_ubatch = N_BATCH
            params.n_seq_max = min(llama_cpp.llama_max_parallel_sequences(), max(8, 2 * self.slots + 1))
            params.kv_unified = True  # sequences share the cells, so a long conversation may use a short one's share
            params.n_threads = params.n_threads_batch = threads
            # as llama-cpp-python's Llama: flash attention on the CPU sums V in f16, in an order that depends on
            # where a sequence's cells lie, so the same prompt would score differently beside other sequences
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            with suppress_stdout_stderr(disable=False):  # its warning: all slots together exceed the trained context
                self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load '{self.path}': {exc}. The file may be damaged or of "
                                 "an architecture this llama.cpp build does not know.") from exc
        self.metadata = dict(self.model.metadata())
        self._vocab = llama_cpp.llama_model_get_vocab(self.model.model)
        self.lock = threading.RLock()
        """Held around every use of the context: each batch step, and scoring between steps."""
        self.batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)
        self.sequences = SequenceCache(llama_cpp, self.ctx.memory, 0, params.n_seq_max, params.n_ctx)
        self._adapters: dict[tuple[str, str], object] = {}  # (name, created) -> llama_adapter_lora pointer
        self._active: tuple[str, str] | None = None  # the adapter set on the context now
        self._wanted = None  # (key, handle) of the innermost adapter block, None for the base
        self._load_lock = threading.Lock()
        self.scheduler = BatchScheduler(self, self.slots, N_BATCH)
        # Closed at exit, or as soon as the engine is collected (a model pool unloaded it and its last request
        # ended): the scheduler holds it weakly and a running reply's generator strongly, so nothing else keeps
        # an unloaded model's memory.
        self._closer = weakref.finalize(self, _close_resources, self.scheduler, self.batch, self.ctx, self.model)

    @property
    def precision(self) -> str:
        """The file's weight type, e.g. ``Q4_1``."""
        file_type = self.metadata.get("general.file_type")
        return _GGUF_FILE_TYPES.get(int(file_type), f"type {file_type}") if file_type is not None else "GGUF"

    @property
    def concurrency(self) -> int:
        """Requests decoded at once (``--parallel``)."""
        return self.slots

    def close(self) -> None:
        closer = getattr(self, "_closer", None)
        if closer is not None:
            closer()

    def is_end(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self._vocab, token))

    def _submit(self, ids: list[int], settings, stop_event: threading.Event, adapter, out=None):
        from assistant.core.engines.llama_cpp_batch import Request

        if not ids or len(ids) >= self.context_window:
            raise InputError(f"The prompt has {len(ids)} tokens; this model's context holds 1 to "
                             f"{self.context_window - 1} besides the reply.")
        sampler = sampler_chain(self.lib, self.model, ids, settings, self.context_window)
        request = Request(list(ids), sampler, settings.max_new_tokens, stop_event, adapter)
        if out is not None:
            request.out = out
        return self.scheduler.submit(request)

    def generate(self, ids: list[int], settings, stop_event: threading.Event | None = None, adapter=None):
        """Token ids of a reply to ``ids`` sampled with ``settings`` (GenerationSettings) under ``adapter`` (an
        adapter's info, or None for the base), decoded in the shared batch. Bad settings raise here; closing the
        generator (or setting ``stop_event``) frees the sequence at the next step."""
        handle = None if adapter is None else ((adapter.name, str(adapter.created)), self._lora(adapter))
        return self._stream(self._submit(ids, settings, stop_event or threading.Event(), handle))

    def _stream(self, request):
        """The request's tokens as they come (an instance method: the generator keeps the engine alive)."""
        from assistant.core.engines.llama_cpp_batch import DONE

        try:
            while True:
                _, item = request.out.get()
                if item is DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            request.stop_event.set()

    def decode(self, ids: list[int], settings, stop_event: threading.Event, on_token: Callable[[int], None]) -> None:
        """Sample a reply to ``ids`` under the innermost ``adapter`` block, calling ``on_token`` per token."""
        tokens = self._stream(self._submit(ids, settings, stop_event, self._wanted))
        try:
            for token in tokens:
                on_token(int(token))
        finally:
            tokens.close()

    def greedy(self, prompts: Sequence[list[int]], max_new_tokens: int,
               stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy replies to ``prompts``, decoded together in the shared batch (``stop``: ends one reply early)."""
        from assistant.core.engines.llama_cpp_batch import DONE

        settings = SimpleNamespace(temperature=0.0, top_p=1.0, repetition_penalty=1.0, seed=None, json_schema=None,
                                   max_new_tokens=max_new_tokens)
        shared = queue.SimpleQueue()
        requests = [self._submit(list(ids), settings, threading.Event(), self._wanted, shared) for ids in prompts]
        produced: dict[object, list[int]] = {request: [] for request in requests}
        remaining = len(requests)
        try:
            while remaining:
                request, item = shared.get()
                if item is DONE:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                elif not request.stop_event.is_set():
                    produced[request].append(int(item))
                    if stop and stop(self.tokenizer.decode(produced[request], skip_special_tokens=True)):
                        request.stop_event.set()
        finally:
            for request in requests:
                request.stop_event.set()
        return [self.tokenizer.decode(produced[request], skip_special_tokens=True) for request in requests]

    def _decode_rows(self, seq: int, tokens: Sequence[int], start: int, logits_all: bool) -> None:
        """Evaluate ``tokens`` on sequence ``seq`` from position ``start`` (caller holds ``lock``), making room in
        the KV cache by dropping idle sequences if it is full."""
        batch = self.batch.batch
        for first in range(0, len(tokens), N_BATCH):
            chunk = tokens[first:first + N_BATCH]
            for i, token in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + first + i, 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = logits_all or i == len(chunk) - 1
            batch.n_tokens = len(chunk)
            self.sequences.make_room(len(chunk))
            while (code := self.lib.llama_decode(self.ctx.ctx, batch)) == 1 and self.sequences.evict_one():
                pass
            if code != 0:
                raise UserError("The server's context is full with other conversations; try again in a moment."
                                if code == 1 else f"llama.cpp could not decode the prompt (code {code}).")

    def score(self, prompt_ids: list[int], continuations: Sequence[Sequence[int]]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after the prompt, between batch steps.

        The prompt minus its last token is evaluated once on a sequence of its own (or found cached); then, per
        continuation, the last prompt token and the continuation are decoded with logits at every position, the
        sequence cut back to the prompt in between. The prompt's sequence stays cached like a conversation's.
        """
        vocab_size = self.model.n_vocab()
        prefix = list(prompt_ids[:-1])
        with self.lock:
            self.set_adapter(self._wanted)
            seq, cached = self.sequences.claim(list(prompt_ids), None if self._wanted is None else self._wanted[0])
            kept = prefix[:cached]
            try:
                if cached < len(prefix):
                    self._decode_rows(seq, prefix[cached:], cached, False)
                kept = prefix
                scores = []
                for tokens in continuations:
                    rows = [prompt_ids[-1], *tokens[:-1]]
                    self.lib.llama_memory_seq_rm(self.ctx.memory, seq, len(prefix), -1)
                    self._decode_rows(seq, rows, len(prefix), True)
                    logits = np.ctypeslib.as_array(self.ctx.get_logits(), shape=(len(rows), vocab_size))
                    logits = logits.astype(np.float64)
                    top = logits.max(axis=1, keepdims=True)
                    logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
                    scores.append(float(sum(logprobs[i, t] for i, t in enumerate(tokens))))
            finally:
                self.lib.llama_memory_seq_rm(self.ctx.memory, seq, len(kept), -1)
                self.sequences.release(seq, kept)
        return scores

    @contextmanager
    def adapter(self, info):
        """Compute with the GGUF LoRA of ``info`` active (None: the base model) inside the block only: what
        ``decode``, ``greedy`` and ``score`` run on (``generate`` takes its adapter as an argument)."""
        handle = self._lora(info) if info is not None else None
        previous = self._wanted
        self._wanted = None if info is None else ((info.name, str(info.created)), handle)
        try:
            yield
        finally:
            self._wanted = previous

    def set_adapter(self, adapter) -> None:
        """Make the context's adapters ``adapter`` ((key, handle) or None); the caller holds ``lock``. Each
        sequence's cache is only ever extended under the adapter it was computed with (``SequenceCache``)."""
        key, handle = adapter or (None, None)
        if key == self._active:
            return
        lib = self.lib
        if handle is None:
            lib.llama_set_adapters_lora(self.ctx.ctx, None, 0, None)
        else:
            handles = (lib.llama_adapter_lora_p_ctypes * 1)(handle)
            lib.llama_set_adapters_lora(self.ctx.ctx, handles, 1, (ctypes.c_float * 1)(1.0))
        self._active = key

    def base_config(self) -> SimpleNamespace:
        """What the LoRA converter needs to know of the base, read from the GGUF metadata."""
        from assistant.core.gguf.architectures import ARCHITECTURES

        arch = self.metadata.get("general.architecture", "")
        hf_names = [name for name, known in ARCHITECTURES.items() if known.gguf_name == arch]
        meta = lambda key: int(self.metadata[f"{arch}.{key}"])  # noqa: E731
        return SimpleNamespace(architectures=hf_names[:1] or [arch], model_type=arch,
                               num_hidden_layers=meta("block_count"), num_attention_heads=meta("attention.head_count"),
                               num_key_value_heads=meta("attention.head_count_kv"))

    def _lora(self, info):
        from assistant.core.gguf.lora_file import gguf_lora_for

        key = (info.name, str(info.created))
        with self._load_lock:
            if key in self._adapters:
                return self._adapters[key]
            path = gguf_lora_for(info.path, self.base_config())
            handle = self.lib.llama_adapter_lora_init(self.model.model, str(path).encode())
            if not handle:
                raise UserError(f"Adapter '{info.name}' was trained on {info.base_model}; its weights do not fit "
                                f"the served model {self.path.name}. Serve its base model to use it.")
            self._adapters[key] = handle
            return handle



def _close_resources(scheduler, *resources) -> None:
    """Stop the decode loop (its requests end), then free the batch, the context and the model, in order."""
    scheduler.close()
    for resource in resources:
        resource.close()

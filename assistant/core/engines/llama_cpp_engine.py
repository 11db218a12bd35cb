"""The llama.cpp engine: a GGUF model served by llama-cpp-python, with GGUF LoRA adapters per request.

The CPU engine whenever the model exists as GGUF. Prompts are built and token ids decoded by the
same Hugging Face tokenizer the transformers engine uses (read from the GGUF file), so both engines
see identical ids. Adapters are converted once to GGUF LoRA (``assistant.core.gguf.lora_file``), loaded
once on the shared base and switched per request with ``llama_set_adapters_lora``; the KV cache is
reused between requests with the same adapter (prefix match) and dropped when the adapter changes.

Every method expects the caller to hold ``loaded.lock`` (one context, one request at a time).

    python -m assistant.core.generation "What is LoRA?"   # one reply from the embedded model, through this engine
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from assistant.core.engines.json_grammar import add_schema_grammar
from assistant.core.errors import ModelLoadError, UserError

DEFAULT_CONTEXT = 4096
"""Context tokens allocated unless asked for more (``--context``): llama.cpp allocates the whole KV
cache up front, and the model's full window (8192 for SmolLM2) costs memory that few chats use."""

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
    """``<arch>.context_length`` from the file's header (llama.cpp would allocate it all by default)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        arch = reader.fields["general.architecture"].contents()
        return int(reader.fields[f"{arch}.context_length"].contents())
    except KeyError:
        return 2048
    except Exception as exc:  # not a GGUF file, truncated, unknown version
        raise ValueError(f"its GGUF header cannot be read ({type(exc).__name__}: {exc})") from exc


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(self, gguf_path: str | Path, tokenizer, context: int | None = None, threads: int | None = None):
        import llama_cpp

        self._lib = llama_cpp
        self.path = Path(gguf_path)
        self.tokenizer = tokenizer
        threads = threads or cpu_threads()
        try:
            trained = _trained_context(self.path)
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=min(context or DEFAULT_CONTEXT, trained),
                                       n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load '{self.path}': {exc}. The file may be damaged or of "
                                 "an architecture this llama.cpp build does not know.") from exc
        # Closed at exit, or as soon as the engine is collected (a model pool unloaded it): never kept alive.
        self._closer = weakref.finalize(self, self.llm.close)
        self.metadata = dict(self.llm.metadata)
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        self._adapters: dict[tuple[str, str], object] = {}  # (name, created) -> llama_adapter_lora pointer
        self._active: tuple[str, str] | None = None  # the adapter set on the context now
        self._wanted = None  # (key, handle) of the innermost adapter block, None for the base
        self._load_lock = threading.Lock()

    @property
    def context_window(self) -> int:
        return int(self.llm.n_ctx())

    @property
    def precision(self) -> str:
        """The file's weight type, e.g. ``Q4_1``."""
        file_type = self.metadata.get("general.file_type")
        return _GGUF_FILE_TYPES.get(int(file_type), f"type {file_type}") if file_type is not None else "GGUF"

    def close(self) -> None:
        self.llm = None
        closer = getattr(self, "_closer", None)
        if closer is not None:
            closer()

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def _eval_reusing_cache(self, ids: list[int], keep_last: bool = False) -> None:
        """Evaluate ``ids``, reusing the KV cache of the prefix they share with what it holds.

        ``keep_last``: evaluate the last token again even when cached (sampling needs its logits).
        """
        llm = self.llm
        cached = 0
        for a, b in zip(llm._input_ids.tolist(), ids):
            if a != b:
                break
            cached += 1
        llm.n_tokens = min(cached, len(ids) - 1) if keep_last else cached  # eval() drops the cache past n_tokens
        llm.eval(ids[llm.n_tokens:])

    def _tokens(self, ids: list[int], temperature: float, top_p: float, repetition_penalty: float,
                seed: int | None, json_schema: dict | None = None):
        """Sampled tokens after ``ids``, with transformers' semantics: the repetition penalty covers every
        token of the prompt and the reply (not llama.cpp's default window of the last 64 generated), and
        temperature applies before top-k (50) and top-p. ``json_schema``: only tokens that keep the reply
        valid JSON for the schema are allowed (llama.cpp's grammar sampler)."""
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        try:
            if repetition_penalty != 1.0:
                sampler.add_penalties(self.llm.n_vocab(), self.context_window, repetition_penalty, 0.0, 0.0)
                for token in ids:
                    sampler.accept(token)
            if json_schema is not None:
                add_schema_grammar(sampler, self.llm._model, json_schema)
            if temperature > 0:
                sampler.add_temp(temperature)
                sampler.add_top_k(50)
                sampler.add_top_p(top_p, 1)
                sampler.add_dist(self._lib.LLAMA_DEFAULT_SEED if seed is None else int(seed) & 0xFFFFFFFF)
            else:
                sampler.add_greedy()
            self._apply()
            self._eval_reusing_cache(ids, keep_last=True)
            while self.llm.n_tokens < self.context_window:
                token = sampler.sample(self.llm._ctx, -1)  # also records the token for the penalty
                yield token
                self.llm.eval([token])
        finally:
            sampler.close()

    def decode(self, ids: list[int], settings, stop_event: threading.Event, on_token: Callable[[int], None]) -> None:
        """Sample a reply to ``ids`` with ``settings`` (GenerationSettings), calling ``on_token`` per token."""
        tokens = self._tokens(ids, settings.temperature, settings.top_p, settings.repetition_penalty, settings.seed,
                              settings.json_schema)
        try:
            for produced, token in enumerate(tokens, 1):
                if stop_event.is_set() or self.is_end(token):
                    break
                on_token(int(token))
                if produced >= settings.max_new_tokens:
                    break
        finally:
            tokens.close()

    def greedy(self, prompts: Sequence[list[int]], max_new_tokens: int,
               stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy replies, one prompt after another (each reuses the KV cache of a shared prefix)."""
        replies = []
        for ids in prompts:
            produced: list[int] = []
            tokens = self._tokens(list(ids), 0.0, 1.0, 1.0, None)
            try:
                for token in tokens:
                    if self.is_end(token):
                        break
                    produced.append(int(token))
                    if len(produced) >= max_new_tokens or (
                            stop and stop(self.tokenizer.decode(produced, skip_special_tokens=True))):
                        break
            finally:
                tokens.close()
            replies.append(self.tokenizer.decode(produced, skip_special_tokens=True))
        return replies

    def score(self, prompt_ids: list[int], continuations: Sequence[Sequence[int]]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after the prompt.

        The prompt minus its last token is evaluated once (or found in the KV cache); then, per
        continuation, the last prompt token and the continuation are decoded with logits at every
        position, the cache cut back to the shared prefix in between.
        """
        self._apply()
        llm = self.llm
        prefix = list(prompt_ids[:-1])
        self._eval_reusing_cache(prefix)
        vocab_size = llm.n_vocab()
        scores = []
        for tokens in continuations:
            rows = [prompt_ids[-1], *tokens[:-1]]
            llm._ctx.kv_cache_seq_rm(-1, len(prefix), -1)
            llm._batch.set_batch(batch=rows, n_past=len(prefix), logits_all=True)
            llm._ctx.decode(llm._batch)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(rows), vocab_size)).astype(np.float64)
            top = logits.max(axis=1, keepdims=True)
            logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
            scores.append(float(sum(logprobs[i, t] for i, t in enumerate(tokens))))
        llm._ctx.kv_cache_seq_rm(-1, len(prefix), -1)
        llm.n_tokens = len(prefix)  # the prefix stays cached for the next label set or chat turn
        return scores

    @contextmanager
    def adapter(self, info):
        """Compute with the GGUF LoRA of ``info`` active (None: the base model) inside the block only.

        The switch itself waits for the next computation (``_apply``), so consecutive requests with
        the same adapter keep their KV cache, and a computation outside any block runs on the base.
        """
        handle = self._lora(info) if info is not None else None
        previous = self._wanted
        self._wanted = None if info is None else ((info.name, str(info.created)), handle)
        try:
            yield
        finally:
            self._wanted = previous

    def _apply(self) -> None:
        """Make the context's adapters what the innermost ``adapter`` block asks for (none outside one)."""
        key, handle = self._wanted or (None, None)
        if key == self._active:
            return
        lib = self._lib
        if handle is None:
            lib.llama_set_adapters_lora(self.llm._ctx.ctx, None, 0, None)
        else:
            handles = (lib.llama_adapter_lora_p_ctypes * 1)(handle)
            lib.llama_set_adapters_lora(self.llm._ctx.ctx, handles, 1, (ctypes.c_float * 1)(1.0))
        self._active = key
        self.llm.reset()  # the KV cache was computed with other weights

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
            handle = self._lib.llama_adapter_lora_init(self.llm._model.model, str(path).encode())
            if not handle:
                raise UserError(f"Adapter '{info.name}' was trained on {info.base_model}; its weights do not fit "
                                f"the served model {self.path.name}. Serve its base model to use it.")
            self._adapters[key] = handle
            return handle


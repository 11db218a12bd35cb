"""Continuous batching on llama.cpp: one context, several sequences, one scheduler thread.

Each request (a prompt, its own sampler chain, a stop event) waits in a FIFO queue until one of ``slots`` running
places is free, then joins the running batch at the next step: each step is one ``llama_decode`` on a mixed batch
that holds the next token of every running sequence of one adapter group and, in the room left, chunks of the
prompts still being read. After the step each sequence that produced logits is sampled with its own chain (its
temperature, top-p, seed, repetition penalty, JSON grammar), and the token goes to that request's queue, which its
caller reads as a generator. A request ends at once on its end token, its token limit, its stop event (Stop, a
client that went away, a closed generator) or an error of its own; its sequence then stays in the KV cache, idle,
for the conversation's next turn (``llama_cpp_sequences``).

Adapters. llama.cpp applies LoRA adapters to the whole context, so one step decodes one adapter group (the base
model is a group too); the groups with running requests take turns step by step. A lone adapter request beside
``k`` other groups therefore gets one step in ``k + 1``: its wait per token is bounded by ``k`` other steps, each
at most ``n_batch`` tokens (``PREFILL_CHUNK`` of prompt while anyone is decoding), whatever the size of the other
groups. Admission itself is first come, first served, across groups.

Other work on the context (scoring label likelihoods) takes ``lock`` between steps.

    pytest tests/test_llama_cpp_batching.py
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field

from assistant.core.errors import UserError

log = logging.getLogger(__name__)

PREFILL_CHUNK = 128
"""Prompt tokens read per step while other sequences are decoding: a long prompt then delays each of their
tokens by the time of ~128 prompt tokens instead of the whole prompt."""

DONE = object()
"""What a request's queue receives after its last token."""


@dataclass(eq=False)
class Request:
    ids: list[int]
    sampler: object
    """A ``llama_cpp._internals.LlamaSampler`` chain, owned (and closed) by the scheduler once submitted."""
    max_new_tokens: int
    stop_event: threading.Event
    adapter: tuple | None
    """(key, llama_adapter_lora pointer) or None for the base model."""
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    """Receives (request, token id), then (request, DONE) or (request, exception)."""
    seq: int = -1
    kv: list[int] = field(default_factory=list)
    """Tokens in this sequence's KV cache (prompt, then evaluated reply tokens)."""
    todo: list[int] = field(default_factory=list)
    """Tokens to evaluate still: the rest of the prompt, then each sampled token."""
    produced: int = 0

    @property
    def group(self):
        return None if self.adapter is None else self.adapter[0]


class BatchScheduler:
    """The decode loop of one llama.cpp context (``engine``: a ``LlamaCppEngine``, which owns context and cache)."""

    def __init__(self, engine, slots: int, n_batch: int):
        self._engine = weakref.ref(engine)  # a model pool's unload frees the engine; its running replies keep it
        self.slots, self.n_batch = slots, n_batch
        self.lock = engine.lock
        self._batch = engine.batch  # shared with scoring: both run under ``lock``
        self._waiting: deque[Request] = deque()
        self._running: list[Request] = []
        self._last_group = None
        self.peak = 0
        """Most requests ever running together (what the tests check batching by)."""
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="llama-cpp-batch", daemon=True)
        self._thread.start()

    @property
    def engine(self):
        engine = self._engine()
        if engine is None:
            raise UserError("The model has been unloaded; send the request again.")
        return engine

    def submit(self, request: Request) -> Request:
        with self._wake:
            if self._closed:
                raise UserError("The model has been unloaded; send the request again.")
            self._waiting.append(request)
            self._wake.notify()
        return request

    def waiting_ahead(self, request: Request) -> int:
        """How many requests wait before ``request`` (0 once it runs)."""
        with self._wake:
            return self._waiting.index(request) if request in self._waiting else 0

    def busy(self) -> int:
        with self._wake:
            return len(self._running) + len(self._waiting)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self.lock:
            for request in [*self._waiting, *self._running]:
                self._finish(request, keep=False)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._running:
                    self._wake.wait()
                if self._closed:
                    return
            try:
                with self.lock:
                    self._step()
            except Exception as exc:  # a fault of the context itself: every running request gets it
                log.exception("llama.cpp batch step failed")
                for request in list(self._running):
                    self._finish(request, error=exc, keep=False)

    def _admit(self) -> None:
        with self._wake:
            for request in [r for r in self._waiting if r.stop_event.is_set()]:
                self._waiting.remove(request)
                self._finish(request, keep=False)
            while self._waiting and len(self._running) < self.slots and self.engine.sequences.has_room():
                request = self._waiting.popleft()
                request.seq, cached = self.engine.sequences.claim(request.ids, request.group)
                request.kv, request.todo = self.engine.sequences.held[request.seq], list(request.ids[cached:])
                self._running.append(request)
                self.peak = max(self.peak, len(self._running))

    def _step(self) -> None:
        self._admit()
        for request in [r for r in self._running if r.stop_event.is_set()]:
            self._finish(request)
        if not self._running:
            return
        group = self._next_group()
        members = [r for r in self._running if r.group == group]
        self.engine.set_adapter(members[0].adapter)
        rows = self._fill(members)
        self.engine.sequences.make_room(self._batch.batch.n_tokens)
        while True:
            code = self.engine.lib.llama_decode(self.engine.ctx.ctx, self._batch.batch)
            if code != 1 or not self.engine.sequences.evict_one():
                break
        if code != 0:
            # 1: no KV cells left with nothing idle to evict; the newest member gives way, the rest retry next step
            failed = [members[-1]] if code == 1 else members
            for request in failed:
                self._finish(request, error=UserError(
                    "The server's context is full with other conversations; send the message again in a moment."
                    if code == 1 else f"llama.cpp could not decode this request (code {code})."), keep=False)
            return
        for request, taken in rows:
            request.kv.extend(request.todo[:taken])
            del request.todo[:taken]
        for index, (request, _) in enumerate(rows):
            if not request.todo:
                self._sample(request, self._batch_logit_index(rows, index))

    def _next_group(self):
        groups = list(dict.fromkeys(r.group for r in self._running))
        after = groups.index(self._last_group) + 1 if self._last_group in groups else 0
        self._last_group = groups[after % len(groups)]
        return self._last_group

    def _fill(self, members: list[Request]) -> list[tuple[Request, int]]:
        """Put the members' next tokens, then prompt chunks, into the batch: [(request, tokens taken)]."""
        batch = self._batch.batch
        decoding = [r for r in members if len(r.todo) == 1]
        reading = [r for r in members if len(r.todo) > 1]
        room = self.n_batch - len(decoding)
        if decoding:
            room = min(room, PREFILL_CHUNK)
        rows, n = [], 0
        for request in decoding + reading:
            take = min(len(request.todo), room if request in reading else 1)
            if take <= 0:
                continue
            if request in reading:
                room -= take
            for i in range(take):
                batch.token[n] = request.todo[i]
                batch.pos[n] = len(request.kv) + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = request.seq
                batch.logits[n] = take == len(request.todo) and i == take - 1
                n += 1
            rows.append((request, take))
        batch.n_tokens = n
        return rows

    @staticmethod
    def _batch_logit_index(rows, index: int) -> int:
        """Position in the batch of the last token of ``rows[index]`` (where its logits are)."""
        return sum(taken for _, taken in rows[:index + 1]) - 1

    def _sample(self, request: Request, batch_index: int) -> None:
        engine = self.engine
        try:
            token = int(engine.lib.llama_sampler_sample(request.sampler.sampler, engine.ctx.ctx, batch_index))
        except Exception as exc:  # this request's sampler alone
            self._finish(request, error=exc, keep=False)
            return
        request.produced += 1
        if engine.is_end(token) or request.stop_event.is_set():
            self._finish(request)
            return
        request.out.put((request, token))
        if request.produced >= request.max_new_tokens or len(request.kv) + 1 >= engine.context_window:
            self._finish(request)
            return
        request.todo = [token]

    def _finish(self, request: Request, error: BaseException | None = None, keep: bool = True) -> None:
        """End ``request``: its caller gets the error or the end; its sequence stays cached unless ``keep`` is off."""
        if request in self._running:
            self._running.remove(request)
        engine = self._engine()
        if request.seq >= 0 and engine is not None:  # None: the engine is being freed, its cache with it
            if keep:
                engine.sequences.release(request.seq, request.kv)
            else:
                engine.sequences.drop(request.seq)
        request.seq = -1
        request.sampler.close()
        request.out.put((request, error if error is not None else DONE))

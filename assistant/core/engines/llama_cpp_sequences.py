"""Which tokens each llama.cpp sequence holds in the shared KV cache, and which idle one to give up first.

The batched engine (``llama_cpp_batch``) runs one context with a unified KV cache and more sequence ids than
running slots: a finished request's sequence stays resident, idle, so the next turn of the same conversation
(whose prompt starts with the previous prompt and reply) finds it and prefills only the new message, even when
other users ran in between. Sequences are matched by token prefix and adapter (KV cells computed with one
adapter are wrong for another), not by a session key, so every caller (chat, ``/v1``, the tasks) gains from it
without saying who it is. Idle sequences are dropped least recently used first, and only when a sequence id or
KV cells are needed.

    pytest tests/test_llama_cpp_batching.py
"""

from __future__ import annotations

from collections import OrderedDict


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class SequenceCache:
    """Bookkeeping of sequence ids ``first .. first + count - 1`` on one llama.cpp memory (``llama_memory_t``).

    Not thread-safe: the caller holds the context's lock around every method.
    """

    def __init__(self, lib, memory, first: int, count: int, cells: int):
        self.lib, self.memory, self.cells = lib, memory, cells
        self.held: dict[int, list[int]] = {}
        """Tokens whose KV cells a sequence holds, positions 0..len-1 (busy and idle sequences; a busy sequence's
        list is its request's, extended as the request's tokens are evaluated)."""
        self.adapter: dict[int, object] = {}
        self.idle: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self.free = list(range(first + count - 1, first - 1, -1))
        self.reused = 0
        """Prompt tokens found in the cache so far (not evaluated again)."""

    def claim(self, ids: list[int], adapter) -> tuple[int, int]:
        """A sequence for the prompt ``ids`` under ``adapter``: (seq id, tokens already in its cache).

        At least the last prompt token is left to evaluate (sampling needs its logits). A cached sequence the prompt
        continues or repeats is taken over; one that shares only a prefix lends it (``seq_cp`` shares the cells, no
        copy) to a new sequence, so another conversation's cache survives a request that shares its system prompt.
        """
        best, shared = None, 0
        for seq in self.idle:
            if self.adapter[seq] == adapter:
                n = common_prefix(self.held[seq], ids)
                if n > shared:
                    best, shared = seq, n
        shared = min(shared, len(ids) - 1)
        # the prompt continues the cached tokens (a conversation's next turn), or repeats the cached prompt (the
        # same request again: its old reply is dropped, and the cells it reuses keep the first run's layout)
        continues = best is not None and shared in (len(self.held[best]), len(ids) - 1)
        only_choice = best is not None and not self.free and len(self.idle) == 1
        if continues or only_choice:
            seq = best
            del self.idle[seq]
        else:
            seq = self._spare(keep=best)
            if best is not None and shared > 0:
                self.lib.llama_memory_seq_cp(self.memory, best, seq, 0, shared)
            else:
                shared = 0
        self.lib.llama_memory_seq_rm(self.memory, seq, shared, -1)
        self.held[seq] = list(ids[:shared])
        self.reused += shared
        self.adapter[seq] = adapter
        return seq, shared

    def _spare(self, keep) -> int:
        if self.free:
            return self.free.pop()
        victim = next(seq for seq in self.idle if seq != keep)  # claim() leaves at least two idle here
        self.drop(victim)
        return self.free.pop()

    def release(self, seq: int, tokens: list[int]) -> None:
        """A request is done with ``seq``, whose cache holds ``tokens``: keep it, idle, most recently used."""
        self.held[seq] = tokens
        self.idle[seq] = None

    def drop(self, seq: int) -> None:
        """Forget ``seq`` and free its KV cells (cells another sequence shares stay)."""
        self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.held.pop(seq, None)
        self.adapter.pop(seq, None)
        self.idle.pop(seq, None)
        self.free.append(seq)

    def make_room(self, tokens: int) -> None:
        """Drop idle sequences, least recently used first, until ``tokens`` more cells fit. Counting shared cells
        once per sequence overestimates the use, so this may drop one sequence too many, never one too few;
        ``llama_decode`` still answers 1 (no slot) if busy sequences alone fill the cache."""
        while sum(map(len, self.held.values())) + tokens > self.cells and self.evict_one():
            pass

    def evict_one(self) -> bool:
        """Drop the least recently used idle sequence; False when none is idle."""
        if not self.idle:
            return False
        self.drop(next(iter(self.idle)))
        return True

    def has_room(self) -> bool:
        """Whether ``claim`` can find a sequence id (a free one or an idle one)."""
        return bool(self.free or self.idle)

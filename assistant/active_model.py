"""The UI's model: a ``LoadedModel``-shaped handle on whichever model the pool serves by default, so every tab
moves to a newly picked model at its next request without being rebuilt.

Reading an attribute (``tokenizer``, ``context_window``, ``engine`` ...) reads it from the current default
model, loading it again if the pool unloaded it meanwhile. Holding ``lock`` pins that model for the thread:
everything the thread reads inside ``with active.lock:`` (the engine above all) comes from the model whose lock
it holds, even if the default changes meanwhile, so a computation never mixes two models.

    active = ActiveModel(pool)
    with active.lock:
        active.engine.decode(ids, settings, stop, on_token)
"""

from __future__ import annotations

import threading


class _PinningLock:
    """``with active.lock:`` holds the current model's own lock and pins that model for this thread."""

    def __init__(self, active: "ActiveModel"):
        self._active = active

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        served = self._active._pins().pop()
        served.loaded.lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        served = self._active.served()
        if not served.loaded.lock.acquire(blocking, timeout):
            return False
        self._active._pins().append(served)
        return True

    def release(self) -> None:
        self.__exit__(None, None, None)


class ActiveModel:
    def __init__(self, pool):
        self._pool = pool
        self._local = threading.local()

    def _pins(self) -> list:
        pins = getattr(self._local, "pins", None)
        if pins is None:
            pins = self._local.pins = []
        return pins

    def served(self):
        """The pinned ``ServedModel`` inside ``with lock``, else the pool's default model (loaded if needed)."""
        pins = self._pins()
        return pins[-1] if pins else self._pool.get()

    def current(self):
        """The ``LoadedModel`` of ``served()``."""
        return self.served().loaded

    @property
    def reference(self) -> str:
        """What the current model was loaded from (an embedded short name, a path or a hub id)."""
        return self.served().entry.reference

    @property
    def lock(self) -> _PinningLock:
        return _PinningLock(self)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current(), name)

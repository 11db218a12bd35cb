"""The chat models in memory: loaded on demand by name, at most ``max_loaded`` at once, least recently used
unloaded first, refused before loading when the memory estimate says they would not fit.

A request that names a model gets it (``get``): a loaded one at once; another is loaded first, while the
loaded models keep serving, and requests move over when it is ready. Loads run one at a time, in turn
(two switches at once are queued, not mixed). A load that fails leaves nothing behind: the half-built model
is dropped and its memory released. An unloaded model's memory returns as soon as the requests still
running on it finish (they hold the last references).

Where the new model and the loaded ones would not fit together but the new one alone would, the least
recently used are unloaded first (requests for them then wait for the new load, as with Ollama).

    pool = ModelPool(catalog, model_builder(settings, store), max_loaded=1)
    served = pool.get("smollm2-135m-instruct")      # a ServedModel: .loaded, .chat (Chat + adapters)
    python bench/model_switch_memory.py      # load, switch and unload the embedded models, RSS at each step
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.chat import Chat
from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel
from assistant.core.memory import available_memory_bytes, release_free_memory
from assistant.core.model_catalog import ModelCatalog, ModelEntry


@dataclass
class ServedModel:
    """One model in memory and the ``Chat`` (with its adapters) that serves it."""

    entry: ModelEntry
    loaded: LoadedModel
    chat: Chat
    loaded_at: float = field(default_factory=time.time)


class ModelPool:
    def __init__(self, catalog: ModelCatalog, build: Callable[[ModelEntry], ServedModel], max_loaded: int = 1,
                 memory_limit_bytes: int = 0, context: int = 4096,
                 available: Callable[[], int | None] = available_memory_bytes):
        """``build`` loads an entry (``model_builder``); ``memory_limit_bytes`` caps the estimated memory of all
        loaded models (0: whatever the system has available, ``available``)."""
        if int(max_loaded) < 1:
            raise InputError(f"--max-loaded-models must be at least 1; got {max_loaded}.")
        self.catalog, self._build, self.max_loaded = catalog, build, int(max_loaded)
        self.memory_limit_bytes, self.context, self._available = int(memory_limit_bytes), int(context), available
        self._served: OrderedDict[str, ServedModel] = OrderedDict()  # least recently used first
        self._state = threading.Lock()
        self._switching = threading.Lock()
        self.default_id = ""
        """The model the UI serves (the picker's choice; ``--model`` at start)."""

    def loaded_ids(self) -> list[str]:
        """The loaded models, most recently used first."""
        with self._state:
            return list(reversed(self._served))

    def loaded(self) -> list[ServedModel]:
        with self._state:
            return list(reversed(self._served.values()))

    def get(self, name: str | None = None) -> ServedModel:
        """The model ``name`` (the default when None), loading it first when it is not in memory."""
        served = self._touch(name or self.default_id)
        if served is not None:
            return served
        entry = self.catalog.find(name or self.default_id)
        served = self._touch(entry.id)
        if served is not None:
            return served
        with self._switching:  # one load at a time; the others queue here
            served = self._touch(entry.id)
            if served is not None:
                return served
            return self._load(entry)

    def adopt(self, served: ServedModel) -> None:
        """Serve a model loaded elsewhere under ``served.entry.id`` (a test's or a script's model), as if loaded here."""
        with self._switching:
            with self._state:
                self._served[served.entry.id] = served
            while len(self._served) > self.max_loaded:
                self._unload_oldest()
            self.default_id = self.default_id or served.entry.id

    def switch_default(self, name: str) -> ServedModel:
        """Load ``name`` (if needed) and make it the model the UI serves."""
        served = self.get(name)
        self.default_id = served.entry.id
        return served

    def unload(self, model_id: str) -> bool:
        """Unload ``model_id`` now (its memory returns when requests still running on it finish); False when it
        was not loaded."""
        with self._switching:
            with self._state:
                if model_id not in self._served:
                    return False
                self._served.move_to_end(model_id, last=False)
            self._unload_oldest()
            return True

    def _touch(self, model_id: str) -> ServedModel | None:
        with self._state:
            served = self._served.get(model_id)
            if served is not None:
                self._served.move_to_end(model_id)
            return served

    def needed_bytes(self, entry: ModelEntry) -> int:
        return entry.memory_needed(self.context)

    def _load(self, entry: ModelEntry) -> ServedModel:
        needed = self.needed_bytes(entry)
        free, reclaimable = self._memory(needed)
        if needed > free + reclaimable:
            raise InputError(self._refusal(entry, needed, free + reclaimable))
        while self._served and needed > free:  # both would not fit: the oldest stops serving before the load
            free += self._unload_oldest()
        try:
            served = self._build(entry)
        except BaseException:
            gc.collect()  # nothing half-loaded stays in memory
            release_free_memory()
            raise
        with self._state:
            self._served[entry.id] = served
        while len(self._served) > self.max_loaded:
            self._unload_oldest()
        if not self.default_id:
            self.default_id = entry.id
        return served

    def _memory(self, needed: int) -> tuple[int, int]:
        """(bytes free for a new model now, bytes unloading every loaded model would give back)."""
        held = sum(self.needed_bytes(s.entry) for s in self._served.values())
        if self.memory_limit_bytes:
            return self.memory_limit_bytes - held, held
        available = self._available()
        return (needed if available is None else available), held

    def _refusal(self, entry: ModelEntry, needed: int, room: int) -> str:
        where = (f"the memory limit (--max-model-memory-mb) leaves {human_bytes(max(room, 0))}" if self.memory_limit_bytes
                 else f"this machine has {human_bytes(max(room, 0))} available, counting what unloading the loaded "
                      "models would free")
        return (f"The model {entry.id!r} needs about {human_bytes(needed)} of memory ({human_bytes(entry.size_bytes)} "
                f"weights and a {self.context}-token context), but {where}. Pick a smaller model, lower --context"
                f"{', or raise --max-model-memory-mb' if self.memory_limit_bytes else ', or free memory'}.")

    def _unload_oldest(self) -> int:
        with self._state:
            if not self._served:
                return 0
            model_id, served = self._served.popitem(last=False)
        if self.default_id == model_id and self._served:
            self.default_id = next(reversed(self._served))
        freed = self.needed_bytes(served.entry)
        del served
        gc.collect()  # engines and adapters form reference cycles; requests still running keep theirs alive
        release_free_memory()
        return freed


def model_builder(settings, store, machine=None) -> Callable[[ModelEntry], ServedModel]:
    """How the app (and every test that serves models) turns a list entry into a served model: the settings'
    engine, precision, device, context and serving format, and the adapter store."""
    from assistant.core.loading import load_served_model
    from assistant.served_adapters import ServedAdapters

    def build(entry: ModelEntry) -> ServedModel:
        loaded = load_served_model(entry.reference, settings.quant, settings.device, settings.engine,
                                   settings.trust_remote_code, settings.cache_dir, settings.context,
                                   settings.serve_format, settings.parallel or None)
        for notice in loaded.notices:
            print(f"note: {notice}", file=sys.stderr)
        adapters = ServedAdapters(loaded, store, entry.reference, machine or settings.machine())
        return ServedModel(entry, loaded, Chat(loaded, adapters))

    return build

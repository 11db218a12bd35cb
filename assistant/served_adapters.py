"""Serve trained adapters on the one loaded model, switched per request.

Generative (causal-lm-lora) adapters load into the serving engine the first time they are
picked and stay loaded (PEFT on the transformers engine; a GGUF LoRA, converted once, on
llama.cpp); each request activates its session's adapter (or none) while holding the model
lock, so sessions never see each other's choice. Encoder-head adapters (classification / NER
heads on MiniLM) load their own small encoder on first use.

    adapters = ServedAdapters(loaded, AdapterStore(data_dir / "adapters"), "smollm2-135m-instruct")
    with adapters.using("sentiment-1"):
        classify(loaded, text, labels)
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from assistant.core.errors import InputError, UserError
from assistant.core.loading import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class HeadModel:
    model: torch.nn.Module
    tokenizer: object
    labels: list[str]
    task: str


class ServedAdapters:
    def __init__(self, loaded: LoadedModel, store, served_reference: str, machine=None):
        from assistant.core.machine_settings import MachineSettings

        self.machine = machine or MachineSettings.from_env()
        """Where head encoders come from (the cache of converted models) and whether their code may run."""
        self.loaded = loaded
        self.store = store
        self._served_reference = served_reference
        self._heads: dict[str, HeadModel] = {}
        self._load_lock = threading.Lock()

    @property
    def served_reference(self) -> str:
        """What the served model was loaded from; the UI's switchable model (``ActiveModel``) says it itself."""
        return getattr(self.loaded, "reference", None) or self._served_reference

    def _compatible(self, info) -> bool:
        base = info.base_model
        return base in (self.served_reference, self.loaded.location, self.loaded.name)

    def adapter_names(self, task: str | None = None, heads: bool = False) -> list[str]:
        """Adapter names usable here: generative ones for this model, plus heads when asked."""
        names = []
        for info in self.store.list():
            if info.broken or (task and info.task != task):
                continue
            if info.kind == "causal-lm-lora" and self._compatible(info):
                names.append(info.name)
            elif heads and info.kind == "encoder-head-lora":
                names.append(info.name)
        return names

    def info(self, name: str | None):
        """The adapter a request picked (None or empty: the base model).

        A missing or broken adapter gets a message fit for any visitor: the store's own message
        (which names the data folder and every adapter) goes to the server log only.
        """
        if not name:
            return None
        try:
            return self.store.get(name)
        except UserError as exc:
            log.info("adapter %r requested but not usable: %s", name, exc)
            shown = name if len(name) <= 64 else name[:61] + "..."
            raise InputError.keyed("adapters.not_usable", name=shown) from None

    def generative(self, name: str | None):
        """The info of the generative adapter ``name`` usable on the served model (None: the base model), for an
        engine's ``generate(..., adapter=info)``; InputError for a head adapter or one of another base."""
        info = self.info(name)
        if info is not None and info.kind != "causal-lm-lora":
            raise InputError(f"'{info.name}' is a classifier-head adapter; pick it in the Classification "
                             "or NER tab, where it runs on its own encoder.")
        if info is not None and not self._compatible(info):
            raise InputError(f"Adapter '{info.name}' was trained on {info.base_model}, but this app serves "
                             f"{self.served_reference}. Pick {info.base_model} in the model picker (or "
                             f"name it in the request), or start the app with --model {info.base_model}.")
        return info

    @contextmanager
    def using(self, name: str | None):
        """Hold the model lock with ``name`` active (or no adapter) for the block; the adapter is checked on the
        model whose lock is held (the UI's model can be switched meanwhile)."""
        with self.loaded.lock:
            info = self.generative(name)
            with self.loaded.engine.adapter(info):
                yield

    def head(self, name: str) -> HeadModel:
        """The encoder + trained head of a head adapter, loaded once."""
        info = self.store.get(name)
        if info.kind != "encoder-head-lora":
            raise InputError(f"'{name}' is not a classifier-head adapter.")
        with self._load_lock:
            cached = self._heads.get(name)
            if cached is None:
                cached = self._heads[name] = _load_head(info, self.machine)
            return cached


def _load_head(info, machine) -> HeadModel:
    from peft import PeftModel

    from assistant.core.head_loading import load_head_model
    from assistant.core.loading import load_tokenizer
    from assistant.core.model_sources import resolve_model

    labels = list(info.labels or [])
    location = resolve_model(info.base_model, machine.cache_dir).location
    base = load_head_model(location, labels, info.task == "ner", trust_remote_code=machine.trust_remote_code)
    model = PeftModel.from_pretrained(base, str(info.path)).merge_and_unload().eval()
    return HeadModel(model, load_tokenizer(str(info.path)), labels, info.task)


@torch.no_grad()
def head_label_scores(head: HeadModel, text: str) -> dict[str, float]:
    encoded = head.tokenizer(text, truncation=True, max_length=512, return_tensors="pt")
    probs = head.model(**encoded).logits.float().softmax(-1)[0]
    return {label: float(p) for label, p in zip(head.labels, probs)}


@torch.no_grad()
def head_entities(head: HeadModel, text: str) -> list[dict]:
    """Entities with exact character offsets from a token-classification head (IOB2 labels)."""
    encoded = head.tokenizer(text, truncation=True, max_length=512, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping")[0].tolist()
    predicted = head.model(**encoded).logits[0].argmax(-1).tolist()
    entities, current, previous_end = [], None, -1
    for (start, end), label_id in zip(offsets, predicted):
        if start == end:
            continue
        continues_word = start == previous_end
        previous_end = end
        if continues_word:  # later sub-tokens of a word were not trained: they follow the word's first one
            if current is not None:
                current["end"] = end
            continue
        tag = head.labels[label_id]
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current["type"] != tag[2:])):
            current = {"type": tag[2:], "start": start, "end": end}
            entities.append(current)
        elif tag.startswith("I-"):
            current["end"] = end
        else:
            current = None
    return [{"text": text[e["start"]:e["end"]], **e} for e in entities]

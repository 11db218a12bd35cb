"""The transformers engine: a (bitsandbytes-quantized or float) ``PreTrainedModel`` with PEFT adapters.

Serves CUDA, models llama.cpp cannot load, and ``--engine transformers``; training and evaluation
always use it. One request at a time: ``generate`` decodes on a thread of its own holding ``loaded.lock``;
every other method expects the caller to hold it (``assistant.core.engines`` says why).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.core.errors import InputError, UserError


NO_GRAMMARS = ("JSON-constrained replies (tools, response_format) need the llama.cpp engine; this app serves with "
               "transformers. Start it with a GGUF model on a CPU, or --engine llama.cpp.")


class _StopOnEvent(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _StopWhen(StoppingCriteria):
    """Ends each sequence once ``predicate(new text so far)`` is true (per row of a batch)."""

    def __init__(self, tokenizer, prompt_length: int, predicate: Callable[[str], bool]):
        self.tokenizer, self.prompt_length, self.predicate = tokenizer, prompt_length, predicate

    def __call__(self, input_ids, scores, **kwargs):
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([self.predicate(text) for text in texts], dtype=torch.bool, device=input_ids.device)


class _TokenCallback(BaseStreamer):
    """A ``generate`` streamer that hands each new token id to a callback (the prompt is skipped)."""

    def __init__(self, on_token: Callable[[int], None]):
        self.on_token, self.prompt_seen = on_token, False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self):
        pass


class TransformersEngine:
    name = "transformers"
    concurrency = 1
    """Requests decoded at once: ``generate`` runs one after another."""

    def __init__(self, loaded):
        self.loaded = loaded  # not the model itself: attaching the first adapter wraps it in a PeftModel
        self._attached: dict[str, str] = {}  # adapter name -> its created stamp (to notice replacement)
        self._wanted: str | None = None  # the innermost adapter block's adapter; None: the base model

    @contextmanager
    def _computing(self):
        """The model as the innermost ``adapter`` block wants it: outside any block, adapters are off."""
        model = self.loaded.model
        if self._wanted is None and self._attached and hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                yield model
        else:
            yield model

    def decode(self, ids: list[int], settings, stop_event: threading.Event, on_token: Callable[[int], None]) -> None:
        """Sample a reply to ``ids`` with ``settings`` (GenerationSettings), calling ``on_token`` per token."""
        if settings.json_schema is not None:
            raise InputError(NO_GRAMMARS)
        input_ids = torch.tensor([ids], device=self.loaded.model.device)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        with self._computing() as model, torch.inference_mode():
            model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                streamer=_TokenCallback(on_token),
                stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop_event)]),
                pad_token_id=self.loaded.tokenizer.pad_token_id,
                **settings.generate_kwargs(),
            )

    def generate(self, ids: list[int], settings, stop_event: threading.Event | None = None, adapter=None):
        """Token ids of a reply to ``ids`` under ``adapter`` (an adapter's info, or None), one request at a time:
        ``generate`` runs on a worker thread that holds ``loaded.lock``. Closing the generator (or setting
        ``stop_event``) ends the worker at the next token, so an abandoned reader never keeps the model locked."""
        stop_event = stop_event or threading.Event()
        tokens: queue.SimpleQueue = queue.SimpleQueue()
        end = object()

        def run():
            try:
                with self.loaded.lock, self.adapter(adapter):
                    if not stop_event.is_set():
                        self.decode(ids, settings, stop_event, tokens.put)
            except BaseException as exc:  # re-raised in the reader below
                tokens.put(exc)
            finally:
                tokens.put(end)

        if settings.json_schema is not None:
            raise InputError(NO_GRAMMARS)

        def read():
            worker = threading.Thread(target=run, name="transformers-generate", daemon=True)
            worker.start()
            try:
                while (item := tokens.get()) is not end:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                stop_event.set()

        return read()

    def greedy(self, prompts: Sequence[list[int]], max_new_tokens: int,
               stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy replies to a batch of prompts (left-padded into one ``generate`` call)."""
        tokenizer, device = self.loaded.tokenizer, self.loaded.model.device
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(ids) for ids in prompts)
        rows = [[pad_id] * (width - len(ids)) + list(ids) for ids in prompts]
        mask = [[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts]
        criteria = StoppingCriteriaList([_StopWhen(tokenizer, width, stop)] if stop else [])
        with self._computing() as model, torch.inference_mode():
            output = model.generate(
                input_ids=torch.tensor(rows, device=device),
                attention_mask=torch.tensor(mask, device=device),
                max_new_tokens=max_new_tokens,
                do_sample=False, temperature=None, top_p=None, top_k=None,
                stopping_criteria=criteria,
                pad_token_id=pad_id,
            )
        return tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)

    def score(self, prompt_ids: list[int], continuations: Sequence[Sequence[int]]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after the prompt.

        Two forward passes, whatever the number of continuations: the prompt once (its KV cache is
        then repeated for every candidate), and all continuations together as one right-padded batch.
        Right padding needs no attention mask: causal attention never lets a real token see the pad
        after it, and the scores read only real positions.
        """
        pad_id = self.loaded.tokenizer.pad_token_id or 0
        longest = max(len(c) for c in continuations)
        rows = [[prompt_ids[-1], *c] + [pad_id] * (longest - len(c)) for c in continuations]
        with self._computing() as model, torch.inference_mode():
            prefix = torch.tensor([prompt_ids[:-1]], device=model.device)
            cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).cache  # only the cache is needed
            cache.batch_repeat_interleave(len(rows))
            logits = model(input_ids=torch.tensor(rows, device=model.device), cache=cache).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        for i, tokens in enumerate(continuations):
            picked = logprobs[i, torch.arange(len(tokens)), torch.tensor(list(tokens), device=logprobs.device)]
            scores.append(float(picked.sum()))
        return scores

    @contextmanager
    def adapter(self, info):
        """Compute with the PEFT adapter of ``info`` active (None: the base model) inside the block only."""
        if info is not None:
            self._attach(info)
            self.loaded.model.set_adapter(info.name)
        previous = self._wanted
        self._wanted = None if info is None else info.name
        try:
            yield
        finally:
            self._wanted = previous
            if previous is not None:
                self.loaded.model.set_adapter(previous)

    def _attach(self, info) -> None:
        from peft import PeftModel

        stamp = str(info.created)
        if self._attached.get(info.name) == stamp:
            return
        model = self.loaded.model
        if info.name in self._attached:  # replaced on disk (deleted and re-trained under the same name)
            model.delete_adapter(info.name)
            del self._attached[info.name]
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(info.path), adapter_name=info.name)
            else:
                self.loaded.model = PeftModel.from_pretrained(model, str(info.path), adapter_name=info.name)
        except Exception as exc:
            raise UserError(f"Adapter '{info.name}' could not be loaded ({str(exc).splitlines()[0]}). "
                            "It may be corrupt: delete it and train it again.") from exc
        self.loaded.model.eval()
        self._attached[info.name] = stamp

"""The chat engine: template, trim to the context window, and stream tokens with a stop switch.

Works without Gradio; the Chat tab and the ``/chat`` API endpoint both call it.

Two decoding paths. A bitsandbytes-quantized (nf4 / int8) Llama-family model on the CPU, with
no adapter picked for the request, decodes with ``assistant.fast_decode``: a quantized copy of
the weights, built on the first such request (or by ``prepare()``). Everything else (adapters,
CUDA, other architectures, and the fp32 / bf16 precisions, kept exact as the reference) goes
through transformers' ``generate``. ``fast_decode="off"`` always uses ``generate``.

Which copy (``fast_decode``):

- ``"auto"`` (default): 4 bits for a 4-bit model, 8 for an 8-bit one; i.e. ``"checkpoint"``
  for nf4 and ``"served"`` for int8.
- ``"checkpoint"``: int4 groups of 32 of the model folder's float weights (falls back to
  ``"served"`` when the folder has none, e.g. a pre-quantized model). Half the bytes per token
  of int8, ~1.5-2x faster. For the embedded GGUF the folder holds its Q4_1 values, which int4
  groups reproduce: replies match the GGUF (and llama.cpp) more closely than NF4 does.
- ``"served"``: int8 of the served model's own (dequantized) weights: replies match the
  NF4 / LLM.int8 model token for token in most steps (top-1 agreement >= 0.95).

    python -m assistant.chat "What is LoRA?"      # one streamed reply from the default model
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from assistant.adapter_runtime import NO_ADAPTER
from assistant.errors import InputError
from assistant.fast_decode import FAST_DECODE_CHOICES, HF_DEFAULT_TOP_K, FastDecoder, eos_token_ids, unsupported_reason
from assistant.loading import LoadedModel
from assistant.memory import release_free_memory

log = logging.getLogger(__name__)

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass
class GenerationSettings:
    """Sampling knobs shown in the Chat tab; validated on creation."""

    temperature: float = 0.7
    """0 means greedy decoding (deterministic)."""
    top_p: float = 0.9
    """Nucleus sampling: keep the smallest token set whose probability reaches top_p."""
    max_new_tokens: int = 256
    """Upper bound on the reply length, in tokens."""
    repetition_penalty: float = 1.1
    """Above 1 discourages repeating tokens already in the text."""

    def __post_init__(self):
        self.temperature = float(self.temperature)
        self.top_p = float(self.top_p)
        self.max_new_tokens = int(self.max_new_tokens)
        self.repetition_penalty = float(self.repetition_penalty)
        if not 0.0 <= self.temperature <= 5.0:
            raise InputError(f"Temperature must be between 0 and 5 (0 = greedy); got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"Top-p must be in (0, 1]; got {self.top_p}.")
        if not 1 <= self.max_new_tokens <= 8192:
            raise InputError(f"Max new tokens must be between 1 and 8192; got {self.max_new_tokens}.")
        if not 0.5 <= self.repetition_penalty <= 3.0:
            raise InputError(f"Repetition penalty must be between 0.5 and 3; got {self.repetition_penalty}.")

    def generate_kwargs(self) -> dict:
        kwargs = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


def message_text(content) -> str:
    """Plain text of a chat message's content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return "" if content is None else str(content)


class _StopOnEvent(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class ChatEngine:
    """Chat on one loaded model. Generation is serialised: one model, one reply at a time."""

    def __init__(self, loaded: LoadedModel, adapters=None, fast_decode: str = "auto"):
        if fast_decode not in FAST_DECODE_CHOICES:
            raise ValueError(f"fast_decode must be one of {FAST_DECODE_CHOICES}, not {fast_decode!r}.")
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.adapters = adapters
        """Optional AdapterRuntime: lets each request pick a LoRA adapter."""
        self.fast_decode = fast_decode
        """Which quantized copy adapter-less requests on a quantized CPU Llama decode on, or "off" (module doc)."""
        self._fast: FastDecoder | None = None

    def uses_fast_decode(self, adapter: str | None = None) -> bool:
        """Whether a request with this adapter choice decodes with the fast decoder."""
        quantized = self.loaded.precision.split()[0] in ("nf4", "int8")
        return (self.fast_decode != "off" and quantized and self.loaded.device == "cpu"
                and (not adapter or adapter == NO_ADAPTER) and unsupported_reason(self.loaded.model) is None)

    @property
    def fast_decoder(self) -> FastDecoder | None:
        """The fast decoder once built (by a first request or ``prepare()``), else None."""
        return self._fast

    def prepare(self) -> None:
        """Build the fast decoder now rather than on the first request (say, in a background thread)."""
        if self.uses_fast_decode():
            with self.loaded.lock:
                self._fast_decoder()

    def _fast_decoder(self) -> FastDecoder | None:
        """The fast decoder, built on first use (0.4-1.5 s); call with the model lock held."""
        if self._fast is None and self.fast_decode != "off":
            try:
                checkpoint = self.loaded.location if self._copy_checkpoint() else None
                self._fast = FastDecoder(self.loaded.model, checkpoint)
                release_free_memory()  # the build's temporary float copies
            except Exception as exc:  # an unexpected weight layout must not break chat
                log.warning("Fast decoding is off; using transformers' generate: %s", exc)
                self.fast_decode = "off"
        return self._fast

    def _copy_checkpoint(self) -> bool:
        if self.fast_decode == "auto":
            return self.loaded.precision.split()[0] == "nf4"
        return self.fast_decode == "checkpoint"

    def _generate_fast(self, decoder: FastDecoder, ids: list[int], settings: "GenerationSettings",
                       streamer: TextIteratorStreamer, stop_event: threading.Event) -> None:
        streamer.put(torch.tensor(ids))  # the prompt, which the streamer skips, exactly as generate does
        model = self.loaded.model
        top_k = getattr(model.generation_config, "top_k", None) or HF_DEFAULT_TOP_K
        for token in decoder.generate(ids, settings.max_new_tokens, eos_token_ids(model, self.tokenizer),
                                      settings.temperature, settings.top_p, settings.repetition_penalty,
                                      top_k, stop_event):
            streamer.put(torch.tensor([token]))

    def conversation(self, message: str, history: list[Message], system_prompt: str = "") -> list[Message]:
        """System prompt + prior turns + the new user message, as plain-text messages."""
        messages = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() else []
        for turn in history or []:
            role = turn.get("role")
            if role in ("user", "assistant"):
                messages.append({"role": role, "content": message_text(turn.get("content"))})
        messages.append({"role": "user", "content": message})
        return messages

    def _encode(self, messages: list[Message]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(encoded, "keys"):
            encoded = encoded["input_ids"]
        return list(encoded)

    def prompt_ids(self, messages: list[Message], max_new_tokens: int) -> tuple[list[int], int]:
        """Token ids of the prompt, dropping the oldest turns until it fits; returns (ids, turns dropped)."""
        budget = self.loaded.context_window - max_new_tokens
        if budget <= 0:
            raise InputError(
                f"Max new tokens ({max_new_tokens}) leaves no room for the prompt in this model's "
                f"{self.loaded.context_window}-token context. Lower max new tokens."
            )
        system = messages[:1] if messages and messages[0]["role"] == "system" else []
        turns = messages[len(system):]
        dropped = 0
        while True:
            ids = self._encode(system + turns)
            if len(ids) <= budget:
                return ids, dropped
            if len(turns) <= 1:
                raise InputError(
                    f"Your message is too long: the prompt needs {len(ids)} tokens but this model's context "
                    f"holds {budget} besides the {max_new_tokens} reserved for the reply. "
                    "Shorten the message or the system prompt, or lower max new tokens."
                )
            # Drop the oldest turn; never start the kept history with an assistant turn.
            turns = turns[1:]
            dropped += 1
            while len(turns) > 1 and turns[0]["role"] != "user":
                turns = turns[1:]
                dropped += 1

    def stream(
        self,
        message: str,
        history: list[Message] | None = None,
        system_prompt: str = "",
        settings: GenerationSettings | None = None,
        stop_event: threading.Event | None = None,
        adapter: str | None = None,
    ) -> Iterator[str]:
        """Yield the reply as it grows (each item is the full text so far)."""
        message = (message or "").strip()
        if not message:
            raise InputError("Type a message first: an empty message cannot be answered.")
        settings = settings or GenerationSettings()
        stop_event = stop_event or threading.Event()
        ids, _ = self.prompt_ids(self.conversation(message, history or [], system_prompt), settings.max_new_tokens)

        input_ids = torch.tensor([ids], device=self.loaded.model.device)
        if adapter and adapter != NO_ADAPTER and self.adapters is None:
            raise InputError("This engine serves no adapters.")
        hold = self.adapters.using(adapter) if self.adapters is not None else self.loaded.lock
        fast = self.uses_fast_decode(adapter)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None)
        failure: list[BaseException] = []

        def run():
            # The worker, not the consumer, holds the lock: an abandoned consumer (closed tab,
            # cancelled request) cannot keep the model locked; the stop event ends its run.
            try:
                with hold, torch.inference_mode():
                    decoder = self._fast_decoder() if fast and not stop_event.is_set() else None
                    if decoder is not None:
                        self._generate_fast(decoder, ids, settings, streamer, stop_event)
                    elif not stop_event.is_set():
                        self.loaded.model.generate(
                            input_ids=input_ids,
                            attention_mask=torch.ones_like(input_ids),
                            streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop_event)]),
                            pad_token_id=self.tokenizer.pad_token_id,
                            **settings.generate_kwargs(),
                        )
            except BaseException as exc:  # re-raised in the consumer below
                failure.append(exc)
            finally:
                streamer.end()  # harmless after generate's own end(); unblocks the consumer on failure

        worker = threading.Thread(target=run, name="chat-generate", daemon=True)
        worker.start()
        text = ""
        try:
            for piece in streamer:
                if piece:
                    text += piece
                    yield text
        finally:
            stop_event.set()  # a closed generator (Stop, disconnect) ends generation at the next token
        worker.join()
        if failure:
            raise failure[0]

    def reply(self, message: str, history=None, system_prompt: str = "", settings=None, adapter=None) -> str:
        """The whole reply at once (the last streamed text)."""
        text = ""
        for text in self.stream(message, history, system_prompt, settings, adapter=adapter):
            pass
        return text


if __name__ == "__main__":
    from assistant.loading import load_causal_lm

    engine = ChatEngine(load_causal_lm("smollm2-135m-instruct"))
    shown = ""
    for partial in engine.stream(" ".join(sys.argv[1:]) or "Hello!", settings=GenerationSettings(temperature=0)):
        print(partial[len(shown):], end="", flush=True)
        shown = partial
    print()

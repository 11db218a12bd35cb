"""``Chat``: template, trim to the context window, and stream tokens with a stop switch.

Works without Gradio; the Chat tab, the ``/chat`` API endpoint and ``/v1`` all call it. Tokens come from
whichever engine serves the model (``assistant.core.engines``: llama.cpp on a CPU for GGUF models, several
replies decoded together; transformers otherwise, one at a time), and a per-request stop event ends the reply
at the next token.

    python -m assistant.chat "What is LoRA?"      # one streamed reply from the default model
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.arguments import number_arg, text_arg
from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel
from assistant.core.generation import encode_messages

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
    seed: int | None = None
    """Fixes the sampling's random numbers, so the same request gives the same reply (None: random)."""
    json_schema: dict | None = None
    """Constrain the reply to JSON matching this JSON Schema (the llama.cpp engine's grammars); None: free text."""

    def __post_init__(self):
        self.temperature = number_arg(self.temperature, "temperature", 0.0, 5.0)
        self.top_p = number_arg(self.top_p, "top_p", 0.0, 1.0)
        if self.top_p == 0:
            raise InputError("'top_p' must be above 0 (1 keeps every token); got 0.")
        self.max_new_tokens = number_arg(self.max_new_tokens, "max_new_tokens", 1, 8192, integer=True)
        self.repetition_penalty = number_arg(self.repetition_penalty, "repetition_penalty", 0.5, 3.0)
        if self.seed is not None:
            self.seed = number_arg(self.seed, "seed", 0, 2**32 - 1, integer=True)
        if self.json_schema is not None and not isinstance(self.json_schema, dict):
            raise InputError("'json_schema' must be a JSON Schema object.")

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


class Chat:
    """Chat on one loaded model: as many replies at once as its engine decodes together (``concurrency``)."""

    def __init__(self, loaded: LoadedModel, adapters=None):
        self.loaded = loaded
        self.adapters = adapters
        """Optional ServedAdapters: lets each request pick a LoRA adapter."""

    @property
    def tokenizer(self):
        """The served model's tokenizer (read each time: the UI's model can be switched)."""
        return self.loaded.tokenizer

    def conversation(self, message: str, history: list[Message], system_prompt: str = "") -> list[Message]:
        """System prompt + prior turns + the new user message, as plain-text messages."""
        messages = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() else []
        for turn in history or []:
            role = turn.get("role")
            if role in ("user", "assistant"):
                messages.append({"role": role, "content": message_text(turn.get("content"))})
        messages.append({"role": "user", "content": message})
        return messages

    def prompt_ids(self, messages: list[Message], max_new_tokens: int,
                   model: LoadedModel | None = None) -> tuple[list[int], int]:
        """Token ids of the prompt for ``model`` (default: the current one), dropping the oldest turns until it
        fits; returns (ids, turns dropped)."""
        model = model or self.loaded.current()
        budget = model.context_window - max_new_tokens
        if budget <= 0:
            raise InputError(
                f"Max new tokens ({max_new_tokens}) leaves no room for the prompt in this model's "
                f"{model.context_window}-token context. Lower max new tokens."
            )
        system = messages[:1] if messages and messages[0]["role"] == "system" else []
        turns = messages[len(system):]
        # Where the kept history may start: the whole of it, or a user turn (never an assistant turn), or
        # the last turn alone. Fewer turns never need more tokens, so a binary search over these starts
        # finds the longest history that fits in O(log n) encodings, not one per dropped turn.
        starts = [0] + [i for i in range(1, len(turns) - 1) if turns[i]["role"] == "user"]
        starts += [len(turns) - 1] if len(turns) > 1 else []
        encoded = {}

        def fits(index: int) -> bool:
            encoded[index] = encode_messages(model.tokenizer, system + turns[starts[index]:])
            return len(encoded[index]) <= budget

        last = len(starts) - 1
        if fits(0):
            return encoded[0], 0
        if last == 0 or not fits(last):
            raise InputError(
                f"Your message is too long: the prompt needs {len(encoded[last])} tokens but this model's context "
                f"holds {budget} besides the {max_new_tokens} reserved for the reply. "
                "Shorten the message or the system prompt, or lower max new tokens."
            )
        low, high = 1, last  # starts[0] does not fit, starts[last] does: the first start that fits is in [low, high]
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                high = middle
            else:
                low = middle + 1
        return encoded[low], starts[low]  # tested: low is the last start or one that fit

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
        message = text_arg(message, "message", optional=True).strip()
        system_prompt = text_arg(system_prompt, "system_prompt", optional=True)
        if not message:
            raise InputError.keyed("chat.empty_message")
        settings = settings or GenerationSettings()
        # One model for the whole request: the UI's handle follows the model picker, a reply in flight must not
        # (its prompt, tokens and text all belong to the model it started on).
        model = self.loaded.current()
        ids, _ = self.prompt_ids(self.conversation(message, history or [], system_prompt), settings.max_new_tokens,
                                 model)
        return self.stream_ids(ids, settings, stop_event, adapter, model)

    def stream_ids(self, ids: list[int], settings: GenerationSettings, stop_event: threading.Event | None = None,
                   adapter: str | None = None, model: LoadedModel | None = None) -> Iterator[str]:
        """Yield the reply to the prompt ``ids`` (from ``prompt_ids`` on the same ``model``; default: the current
        one) as it grows, full text each time.

        The engine's ``generate`` yields token ids (llama.cpp: this request's share of the shared batch;
        transformers: a worker thread holding the model lock). Closing this generator (Stop, a disconnect)
        sets ``stop_event``, which frees the request's place at the engine's next step."""
        stop_event = stop_event or threading.Event()
        if adapter and self.adapters is None:
            raise InputError("No adapters are served with this model.")
        info = self.adapters.generative(adapter) if self.adapters is not None else None
        model = model or self.loaded.current()
        return self._texts(model.engine.generate(ids, settings, stop_event, info), stop_event, model.tokenizer)

    @staticmethod
    def _texts(tokens: Iterator[int], stop_event: threading.Event, tokenizer) -> Iterator[str]:
        """The growing text of ``tokens``, decoded incrementally (a window of the last tokens, as text-generation-
        inference does, so a long reply costs O(n), and a character split over tokens waits for its last byte)."""
        produced: list[int] = []
        text, start, read = "", 0, 0
        try:
            for token in tokens:
                produced.append(token)
                before = tokenizer.decode(produced[start:read], skip_special_tokens=True)
                after = tokenizer.decode(produced[start:], skip_special_tokens=True)
                if len(after) > len(before) and not after.endswith("\ufffd"):
                    text += after[len(before):]
                    start, read = read, len(produced)
                    yield text
            before = tokenizer.decode(produced[start:read], skip_special_tokens=True)
            after = tokenizer.decode(produced[start:], skip_special_tokens=True)
            if len(after) > len(before):  # a last character left incomplete: shown as the tokenizer decodes it
                yield text + after[len(before):]
        finally:
            stop_event.set()
            tokens.close()

    def reply(self, message: str, history=None, system_prompt: str = "", settings=None, adapter=None) -> str:
        """The whole reply at once (the last streamed text)."""
        text = ""
        for text in self.stream(message, history, system_prompt, settings, adapter=adapter):
            pass
        return text


if __name__ == "__main__":
    from assistant.core.loading import load_served_model

    chat = Chat(load_served_model("smollm2-135m-instruct"))
    shown = ""
    for partial in chat.stream(" ".join(sys.argv[1:]) or "Hello!", settings=GenerationSettings(temperature=0)):
        print(partial[len(shown):], end="", flush=True)
        shown = partial
    print()

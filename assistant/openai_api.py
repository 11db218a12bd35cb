"""An OpenAI-compatible API at ``/v1``, beside the UI on the same server and the same pool of models.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused")
    client.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}])

Routes: ``GET /v1/models`` (the model list, ``assistant.core.model_catalog``: loaded models first, each followed
by its generative adapters as model ids of their own; name, format, size, quantization, license, loaded, usable
and why not), where a request's ``model`` loads that model on demand (``assistant.model_pool``),
``POST /v1/chat/completions`` (streamed as server-sent events or not; temperature, top_p, max_tokens,
stop, seed; ``tools`` + ``tool_choice``; ``response_format`` json_object / json_schema),
``POST /v1/completions`` (raw text, no chat template) and ``POST /v1/embeddings`` (MiniLM).
Requests run on the model they name (loaded on demand, see ``assistant.model_pool``), shared with the UI: on
llama.cpp they join its batch (``--parallel`` replies decoded together, the rest waiting in order), on
transformers they take the model lock one at a time. Tool arguments and JSON replies are constrained to their
schema by llama.cpp's grammar sampler (one per request), so even the 135M model cannot produce broken JSON;
schemas are bounded first (``assistant.core.engines.json_schema_limits``: size, depth, lengths, enum sizes) and
their grammars built before the request waits for the model. ``n`` (1 to 8 choices, generated together) only
without ``stream``; a stream's ``X-Queue-Position`` header says its place in line for a slot. A client that
disconnects stops its generation at the next token. With ``ASSISTANT_API_KEYS`` set, ``Authorization: Bearer KEY``
is required (any case of "Bearer"). Errors are OpenAI-style objects: 400 bad request (also: a model that cannot be used, would not
fit, or lies outside the models folder), 401 bad key, 404 unknown model, 413 body over 8 MiB, 500 a model that
failed to load.

This module is the logic (``OpenAIService``); ``assistant.openai_requests`` reads request bodies and
``assistant.openai_routes`` wires the service to FastAPI.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time

from assistant.arguments import text_arg
from assistant.chat import Chat
from assistant.core.engines.json_grammar import schema_grammar
from assistant.core.engines.json_schema_limits import check_schema
from assistant.core.errors import InputError, UserError
from assistant.model_pool import ModelPool, ServedModel
from assistant.openai_replies import EventStream, chat_events, complete, complete_each, queue_position, usage
from assistant.openai_requests import (ApiError, chat_messages, choice_count, parse_call, sampling, stop_sequences,
                                       streams, tool_choice, tool_schema, tools_prompt)

EMBEDDING_MODEL = "minilm-l6-v2"


class OpenAIService:
    """The logic behind the routes, without the web framework (``routes`` wires it to FastAPI)."""

    def __init__(self, pool: ModelPool, api_keys: list[str] | None = None, responses=None):
        self.pool = pool
        self.api_keys = [key.encode() for key in (api_keys or []) if key]
        self.responses = responses
        """An ``assistant.feedback.responses.ResponseLog``: each reply is remembered by its id, to be rated."""

    def _remember(self, meta: dict, messages: list[dict], text: str, served, adapter: str | None) -> None:
        if self.responses is not None:
            self.responses.remember("v1", messages, text, served.entry.id, adapter, "v1", meta["id"])

    def check_key(self, authorization: str | None) -> None:
        if not self.api_keys:
            return
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        given = credentials if scheme.lower() == "bearer" else authorization or ""  # the scheme is case-insensitive
        given = given.strip().encode("utf-8", "surrogatepass")
        if not any(hmac.compare_digest(given, key) for key in self.api_keys):
            raise ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>' with a key from "
                                "ASSISTANT_API_KEYS.", kind="invalid_api_key", code="invalid_api_key")

    def model_ids(self) -> list[str]:
        return [item["id"] for item in self.models()["data"]]

    def models(self) -> dict:
        """The model list (loaded models first, then the rest of ``ModelCatalog.entries``), each loaded model's
        adapters after it as models of their own."""
        now, in_memory = int(time.time()), self.pool.loaded()
        loaded_ids = [served.entry.id for served in in_memory]
        entries = {entry.id: entry for entry in self.pool.catalog.entries()}
        for served in in_memory:
            entries.setdefault(served.entry.id, served.entry)
        order = loaded_ids + [i for i in entries if i not in loaded_ids]
        data = []
        for model_id in order:
            entry = entries[model_id]
            data.append({"id": model_id, "object": "model", "created": now, "owned_by": "assistant-studio",
                         "name": entry.name, "source": entry.source, "format": entry.format,
                         "size_bytes": entry.size_bytes, "quantization": entry.quantization,
                         "license": entry.license, "loaded": model_id in loaded_ids,
                         "usable": entry.usable, "problem": entry.problem})
            served = next((s for s in in_memory if s.entry.id == model_id), None)
            adapters = served.chat.adapters if served is not None else None
            for name in adapters.adapter_names() if adapters is not None else []:
                data.append({"id": name, "object": "model", "created": now, "owned_by": "assistant-studio",
                             "name": name, "format": "adapter", "base": model_id, "loaded": True, "usable": True})
        return {"object": "list", "data": data}

    def _route(self, model) -> tuple[ServedModel, str | None]:
        """(the served model a request names, the adapter it names or None), loading the model if needed."""
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required: one of the ids GET /v1/models lists.", param="model")
        try:
            return self.pool.get(model), None
        except InputError as exc:
            refused = exc
        except UserError as exc:  # the model exists but failed to load
            raise ApiError(500, str(exc), param="model") from None
        adapter = self._adapter_base(model)
        if adapter is None:
            status = 404 if "does not exist here" in str(refused) else 400
            raise ApiError(status, str(refused), param="model", code="model_not_found" if status == 404 else None)
        try:
            return self.pool.get(adapter), model
        except UserError as exc:
            raise ApiError(400, f"The adapter {model!r} was trained on {adapter!r}, which cannot be served: {exc}",
                           param="model") from None

    def _adapter_base(self, name: str) -> str | None:
        """The base model of the generative adapter ``name``, when there is one."""
        in_memory = self.pool.loaded()
        for served in in_memory:
            adapters = served.chat.adapters
            if adapters is not None and name in adapters.adapter_names():
                return served.entry.id
        adapters = in_memory[0].chat.adapters if in_memory else None
        info = next((i for i in adapters.store.list() if i.name == name), None) if adapters is not None else None
        if info is None or info.broken or info.kind != "causal-lm-lora":
            return None
        return info.base_model

    def chat(self, body: dict, stop_event: threading.Event | None = None) -> tuple[dict | None, EventStream | None]:
        """(response, None) or, for ``stream``, (None, the server-sent event lines). Setting ``stop_event`` (the
        client went away) ends the generation at the next token."""
        stop_event = stop_event or threading.Event()
        messages = chat_messages(body)
        choice = tool_choice(body)
        stream = streams(body)
        schema, tool_names = tool_schema(body.get("tools"), choice)
        if choice == "none":
            schema, tool_names = None, []
        elif schema is not None:
            messages = [{"role": "system", "content": tools_prompt(body["tools"], tool_names)}, *messages]
        response_schema = self._response_schema(body.get("response_format"))
        calls_tool = schema is not None and choice != "auto"
        settings = sampling(body, schema if calls_tool else response_schema)
        stops = stop_sequences(body.get("stop"))
        count = choice_count(body, allowed=not stream)
        if stream and calls_tool:
            raise ApiError(400, "Streaming a required tool call is not supported; send stream=false.", param="stream")
        served, adapter = self._route(body.get("model"))
        chat = served.chat
        self._check_schema(chat, settings.json_schema, "tools" if calls_tool else "response_format")
        try:
            ids, _ = chat.prompt_ids(messages, settings.max_new_tokens)
        except InputError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        meta = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": body["model"]}
        if stream:
            lines = chat_events(chat, ids, settings, stops, adapter, meta, stop_event,
                                lambda text: self._remember(meta, messages, text, served, adapter))
            return None, EventStream(lines, queue_position(chat))
        replies = complete_each(chat, ids, settings, stops, adapter, stop_event, count)
        self._remember(meta, messages, replies[0][0], served, adapter)  # a rating of this id rates the first choice
        choices = []
        for index, (text, finish) in enumerate(replies):
            message = {"role": "assistant", "content": text}
            if schema is not None:
                call = parse_call(text, tool_names)
                if call is not None:
                    message = {"role": "assistant", "content": None, "tool_calls": [call]}
                    finish = "tool_calls"
            choices.append({"index": index, "message": message, "finish_reason": finish})
        counted = usage(chat, ids, [text for text, _ in replies])
        return {**meta, "object": "chat.completion", "choices": choices, "usage": counted}, None

    @staticmethod
    def _check_schema(chat: Chat, schema: dict | None, param: str) -> None:
        """Refuse a schema over the limits (``json_schema_limits``) and, on llama.cpp, build its grammar now: before
        the request waits for the model lock, so the engine finds it cached."""
        if schema is None:
            return
        try:
            if chat.loaded.engine_name == "llama.cpp":
                schema_grammar(schema)
            else:
                check_schema(schema)
        except InputError as exc:
            raise ApiError(400, str(exc), param=param) from None

    @staticmethod
    def _response_schema(response_format) -> dict | None:
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "text":
            return None
        if kind == "json_object":
            return {"type": "object"}
        described = response_format.get("json_schema") if kind == "json_schema" else None
        if isinstance(described, dict) and isinstance(described.get("schema"), dict):
            return described["schema"]
        raise ApiError(400, "'response_format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                            "{\"type\": \"json_schema\", \"json_schema\": {\"name\", \"schema\"}}.",
                       param="response_format")

    def completions(self, body: dict, stop_event: threading.Event | None = None) -> dict:
        prompt = body.get("prompt")
        try:
            prompt = text_arg(prompt, "prompt")
        except InputError as exc:
            raise ApiError(400, str(exc), param="prompt") from None
        if streams(body):
            raise ApiError(400, "Streaming is offered on /v1/chat/completions; send stream=false here.",
                           param="stream")
        choice_count(body, allowed=False)
        settings = sampling(body)
        served, adapter = self._route(body.get("model"))
        chat = served.chat
        ids = list(chat.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        budget = chat.loaded.context_window - settings.max_new_tokens
        if not ids or len(ids) > budget:
            raise ApiError(400, f"The prompt has {len(ids)} tokens; this model allows 1 to {budget} with "
                                f"max_tokens={settings.max_new_tokens}.", param="prompt")
        text, finish = complete(chat, ids, settings, stop_sequences(body.get("stop")), adapter,
                                stop_event or threading.Event())
        meta = {"id": f"cmpl-{secrets.token_hex(12)}"}
        self._remember(meta, [{"role": "user", "content": prompt}], text, served, adapter)
        return {"id": meta["id"], "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "text": text, "finish_reason": finish,
                                                     "logprobs": None}], "usage": usage(chat, ids, [text])}

    def embeddings(self, body: dict) -> dict:
        from assistant.faq.embeddings import default_encoder

        if body.get("model") not in (EMBEDDING_MODEL, "all-MiniLM-L6-v2"):
            raise ApiError(404, f"The embedding model {str(body.get('model'))[:80]!r} does not exist here; use "
                                f"{EMBEDDING_MODEL!r}.", param="model", code="model_not_found")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or len(texts) > 256:
            raise ApiError(400, "'input' must be a string or a list of 1 to 256 strings.", param="input")
        try:
            texts = [text_arg(t, f"input[{i}]") for i, t in enumerate(texts)]
        except InputError as exc:
            raise ApiError(400, str(exc), param="input") from None
        encoder = default_encoder()
        vectors = encoder.encode(texts)
        tokens = sum(len(encoder.tokenizer(t)["input_ids"]) for t in texts)
        return {"object": "list", "model": EMBEDDING_MODEL,
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

"""An OpenAI-compatible API at ``/v1``, beside the UI on the same server and the same loaded model.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused")
    client.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}])

Routes: ``GET /v1/models`` (the served model and each generative adapter, as its own model id),
``POST /v1/chat/completions`` (streamed as server-sent events or not; temperature, top_p, max_tokens,
stop, seed; ``tools`` + ``tool_choice``; ``response_format`` json_object / json_schema),
``POST /v1/completions`` (raw text, no chat template) and ``POST /v1/embeddings`` (MiniLM).
Requests run on the same model lock as the UI's, one computation at a time. Tool arguments and JSON
replies are constrained to their schema by llama.cpp's grammar sampler, so even the 135M model
cannot produce broken JSON. With ``ASSISTANT_API_KEYS`` set, ``Authorization: Bearer KEY`` is
required. Errors are OpenAI-style objects: 400 bad request, 401 bad key, 404 unknown model.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator

from fastapi import APIRouter, Request  # module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assistant.arguments import text_arg
from assistant.chat import ChatEngine, GenerationSettings, message_text
from assistant.errors import InputError, UserError

EMBEDDING_MODEL = "minilm-l6-v2"


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param, self.code = status, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


def _stop_sequences(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of up to 4 non-empty strings.", param="stop")
    return stops


def _settings(body: dict, json_schema: dict | None = None) -> GenerationSettings:
    try:
        return GenerationSettings(
            temperature=body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0,
            top_p=body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0,
            max_new_tokens=body.get("max_tokens") or body.get("max_completion_tokens") or 256,
            repetition_penalty=1.0, seed=body.get("seed"), json_schema=json_schema)
    except InputError as exc:
        raise ApiError(400, str(exc)) from None


def _tool_schema(tools, choice) -> tuple[dict | None, list[str]]:
    """(JSON schema a tool call must match, tool names) for ``tools`` and ``tool_choice``."""
    if not tools:
        return None, []
    if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function"
                                              and isinstance(t.get("function"), dict)
                                              and isinstance(t["function"].get("name"), str) for t in tools):
        raise ApiError(400, "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\", "
                            "\"parameters\"}} objects.", param="tools")
    functions = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in tools}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in functions:
            raise ApiError(400, f"tool_choice names {name!r}, which is not in 'tools'.", param="tool_choice")
        functions = {name: functions[name]}
    options = [{"type": "object", "properties": {"name": {"const": name}, "arguments": parameters},
                "required": ["name", "arguments"]} for name, parameters in functions.items()]
    return ({"anyOf": options} if len(options) > 1 else options[0]), list(functions)


def _tools_prompt(tools: list, names: list[str]) -> str:
    described = "\n".join(f"- {t['function']['name']}: {t['function'].get('description', '')} parameters: "
                          f"{json.dumps(t['function'].get('parameters') or {})}" for t in tools
                          if t["function"]["name"] in names)
    return ('You can call one of these tools. Reply with a JSON object {"name": tool name, "arguments": {...}} '
            f"that calls the one that fits the request.\n{described}")


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects.", param="messages")
    clean = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool",
                                                                         "developer"):
            raise ApiError(400, f"messages[{index}] needs a role of system, user, assistant or tool.",
                           param="messages")
        try:
            content = text_arg(message_text(message.get("content")), f"messages[{index}].content")
        except InputError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        role = {"developer": "system", "tool": "user"}.get(message["role"], message["role"])
        clean.append({"role": role, "content": content})
    return clean


class OpenAIService:
    """The logic behind the routes, without the web framework (``routes`` wires it to FastAPI)."""

    def __init__(self, engine: ChatEngine, model_id: str, api_keys: list[str] | None = None):
        self.engine, self.model_id = engine, model_id
        self.api_keys = [key.encode() for key in (api_keys or []) if key]

    def check_key(self, authorization: str | None) -> None:
        if not self.api_keys:
            return
        given = (authorization or "").removeprefix("Bearer ").strip().encode("utf-8", "surrogatepass")
        if not any(hmac.compare_digest(given, key) for key in self.api_keys):
            raise ApiError(401, "Missing or wrong API key: send 'Authorization: Bearer <key>' with a key from "
                                "ASSISTANT_API_KEYS.", kind="invalid_api_key", code="invalid_api_key")

    def model_ids(self) -> list[str]:
        adapters = self.engine.adapters
        extra = [name for name in adapters.choices()[1:]] if adapters is not None else []
        return [self.model_id, *extra]

    def models(self) -> dict:
        now = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": now,
                                            "owned_by": "assistant-studio"} for name in self.model_ids()]}

    def _adapter_for(self, model) -> str | None:
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required: one of the ids GET /v1/models lists.", param="model")
        if model == self.model_id:
            return None
        if model in self.model_ids():
            return model
        raise ApiError(404, f"The model {model[:80]!r} does not exist here; GET /v1/models lists the ones that do.",
                       param="model", code="model_not_found")

    def chat(self, body: dict) -> tuple[dict | None, Iterator[str] | None]:
        """(response, None) or, for ``stream``, (None, server-sent event lines)."""
        adapter = self._adapter_for(body.get("model"))
        messages = _messages(body)
        schema, tool_names = _tool_schema(body.get("tools"), body.get("tool_choice", "auto"))
        choice = body.get("tool_choice", "auto")
        if choice == "none":
            schema, tool_names = None, []
        elif schema is not None:
            messages = [{"role": "system", "content": _tools_prompt(body["tools"], tool_names)}, *messages]
        response_schema = self._response_schema(body.get("response_format"))
        calls_tool = schema is not None and choice != "auto"
        settings = _settings(body, schema if calls_tool else response_schema)
        stops = _stop_sequences(body.get("stop"))
        try:
            ids, _ = self.engine.prompt_ids(messages, settings.max_new_tokens)
        except InputError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        meta = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": body["model"]}
        if body.get("stream"):
            if calls_tool:
                raise ApiError(400, "Streaming a required tool call is not supported; send stream=false.",
                               param="stream")
            return None, self._chat_events(ids, settings, stops, adapter, meta)
        text, finish = self._complete(ids, settings, stops, adapter)
        message = {"role": "assistant", "content": text}
        if schema is not None:
            call = _parse_call(text, tool_names)
            if call is not None:
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                finish = "tool_calls"
        usage = self._usage(ids, text)
        return {**meta, "object": "chat.completion", "choices": [{"index": 0, "message": message,
                                                                    "finish_reason": finish}], "usage": usage}, None

    @staticmethod
    def _response_schema(response_format) -> dict | None:
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "text":
            return None
        if kind == "json_object":
            return {"type": "object"}
        if kind == "json_schema" and isinstance((response_format.get("json_schema") or {}).get("schema"), dict):
            return response_format["json_schema"]["schema"]
        raise ApiError(400, "'response_format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                            "{\"type\": \"json_schema\", \"json_schema\": {\"name\", \"schema\"}}.",
                       param="response_format")

    def _usage(self, ids: list[int], text: str) -> dict:
        completion = len(self.engine.tokenizer(text, add_special_tokens=False)["input_ids"])
        return {"prompt_tokens": len(ids), "completion_tokens": completion, "total_tokens": len(ids) + completion}

    def _pieces(self, ids, settings, stops, adapter) -> Iterator[tuple[str, str | None]]:
        """(new text, finish reason) as the reply grows; the reason comes with the last piece."""
        stop_event = threading.Event()
        hold = max((len(stop) - 1 for stop in stops), default=0)  # a tail that may begin a stop sequence
        sent = text = ""
        try:
            for text in self.engine.stream_ids(ids, settings, stop_event, adapter):
                cut = min((text.find(stop) for stop in stops if stop in text), default=-1)
                if cut >= 0:
                    yield text[len(sent):max(cut, len(sent))], "stop"
                    return
                if len(text) - hold > len(sent):
                    yield text[len(sent):len(text) - hold], None
                    sent = text[:len(text) - hold]
        except UserError as exc:
            raise ApiError(400, str(exc)) from None
        finally:
            stop_event.set()  # also when the client went away mid-stream
        produced = len(self.engine.tokenizer(text, add_special_tokens=False)["input_ids"])
        yield text[len(sent):], "length" if produced >= settings.max_new_tokens else "stop"

    def _complete(self, ids, settings, stops, adapter) -> tuple[str, str]:
        text, finish = "", "stop"
        for piece, reason in self._pieces(ids, settings, stops, adapter):
            text, finish = text + piece, reason or finish
        return text, finish

    def _chat_events(self, ids, settings, stops, adapter, meta) -> Iterator[str]:
        def chunk(delta: dict, finish=None) -> str:
            payload = {**meta, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        try:
            finish = "stop"
            for piece, reason in self._pieces(ids, settings, stops, adapter):
                if piece:
                    yield chunk({"content": piece})
                finish = reason or finish
            yield chunk({}, finish)
        except ApiError as exc:
            yield f"data: {json.dumps(exc.body())}\n\n"
        yield "data: [DONE]\n\n"

    def completions(self, body: dict) -> dict:
        adapter = self._adapter_for(body.get("model"))
        prompt = body.get("prompt")
        try:
            prompt = text_arg(prompt, "prompt")
        except InputError as exc:
            raise ApiError(400, str(exc), param="prompt") from None
        if body.get("stream"):
            raise ApiError(400, "Streaming is offered on /v1/chat/completions; send stream=false here.",
                           param="stream")
        settings = _settings(body)
        ids = list(self.engine.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        budget = self.engine.loaded.context_window - settings.max_new_tokens
        if not ids or len(ids) > budget:
            raise ApiError(400, f"The prompt has {len(ids)} tokens; this model allows 1 to {budget} with "
                                f"max_tokens={settings.max_new_tokens}.", param="prompt")
        text, finish = self._complete(ids, settings, _stop_sequences(body.get("stop")), adapter)
        return {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "text": text, "finish_reason": finish,
                                                     "logprobs": None}], "usage": self._usage(ids, text)}

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


def _parse_call(text: str, names: list[str]) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names or not isinstance(value.get("arguments"), dict):
        return None
    return {"id": f"call_{secrets.token_hex(8)}", "type": "function",
            "function": {"name": value["name"], "arguments": json.dumps(value["arguments"], ensure_ascii=False)}}


def routes(service: OpenAIService):
    """A FastAPI router with the ``/v1`` routes of ``service``."""
    router = APIRouter(prefix="/v1")

    async def body_of(request: Request) -> dict:
        service.check_key(request.headers.get("authorization"))
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    def failure(exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @router.get("/models")
    async def models(request: Request):
        try:
            service.check_key(request.headers.get("authorization"))
        except ApiError as exc:
            return failure(exc)
        return service.models()

    @router.post("/chat/completions")
    async def chat(request: Request):
        try:
            body = await body_of(request)
            response, events = await run_in_threadpool(service.chat, body)
        except ApiError as exc:
            return failure(exc)
        if events is not None:
            return StreamingResponse(iterate_in_threadpool(events), media_type="text/event-stream")
        return response

    @router.post("/completions")
    async def completions(request: Request):
        try:
            return await run_in_threadpool(service.completions, await body_of(request))
        except ApiError as exc:
            return failure(exc)

    @router.post("/embeddings")
    async def embeddings(request: Request):
        try:
            return await run_in_threadpool(service.embeddings, await body_of(request))
        except ApiError as exc:
            return failure(exc)

    return router

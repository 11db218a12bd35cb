"""The ``/v1`` FastAPI routes of an ``OpenAIService`` (``app.py`` mounts them beside Gradio).

Model calls run in the thread pool, streams as server-sent events; every ``ApiError`` becomes its
OpenAI-style JSON body and status.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request  # module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assistant.openai_api import OpenAIService
from assistant.openai_requests import ApiError


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

    def json_route(path: str, handler) -> None:
        async def route(request: Request):
            try:
                return await run_in_threadpool(handler, await body_of(request))
            except ApiError as exc:
                return failure(exc)

        router.add_api_route(path, route, methods=["POST"])

    json_route("/completions", service.completions)
    json_route("/embeddings", service.embeddings)
    return router

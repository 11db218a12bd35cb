"""The ``/v1`` FastAPI routes of an ``OpenAIService`` (``app.py`` mounts them beside Gradio).

Model calls run in the thread pool, streams as server-sent events; every ``ApiError`` becomes its
OpenAI-style JSON body and status. A body is read up to ``MAX_BODY_BYTES`` (413 past it). A client
that goes away stops its generation at the next token: a stream when its connection closes, a plain
request when the server sees the disconnect, so an abandoned request never keeps the model busy.
"""

from __future__ import annotations

import asyncio
import threading

from fastapi import APIRouter, Request  # module level: FastAPI resolves the handlers' annotations here
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect

from assistant.openai_api import OpenAIService
from assistant.openai_requests import MAX_BODY_BYTES, ApiError, parse_body


class StoppingEventStream(StreamingResponse):
    """Server-sent events whose generation stops (``stop`` is set) as soon as the client disconnects, and in any
    case when the response ends: Starlette neither closes the iterator nor waits for it to finish."""

    def __init__(self, events, stop: threading.Event, headers: dict | None = None):
        super().__init__(iterate_in_threadpool(events), media_type="text/event-stream", headers=headers)
        self.stop = stop

    async def listen_for_disconnect(self, receive) -> None:
        await super().listen_for_disconnect(receive)
        self.stop.set()  # now, not once the thread reading the next piece returns (it may wait for the model lock)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stop.set()


async def _until_disconnect(request: Request, stop: threading.Event) -> None:
    """Set ``stop`` when the client disconnects (the body has been read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    stop.set()


async def _run_stoppable(request: Request, work, body: dict, stop: threading.Event):
    """``work(body, stop)`` in the thread pool; ``stop`` is set if the client disconnects meanwhile."""
    watcher = asyncio.create_task(_until_disconnect(request, stop))
    try:
        return await run_in_threadpool(work, body, stop)
    finally:
        watcher.cancel()


def rate_response(feedback, body: dict) -> dict:
    """``POST /v1/feedback`` {"id": a /v1 response's id, "rating": "up" | "down", "better_answer": optional}."""
    from assistant.core.errors import InputError

    try:
        stored = feedback.rate(body.get("id"), body.get("rating"), body.get("better_answer"), session="v1")
    except InputError as exc:
        status = 404 if str(exc).startswith("No reply with id") else 400
        raise ApiError(status, str(exc), param="id" if status == 404 else None) from None
    return {"object": "feedback", "id": stored["id"], "rating": stored["rating"],
            "better_answer": stored["better_answer"], "time": stored["time"]}


def routes(service: OpenAIService, feedback=None):
    """A FastAPI router with the ``/v1`` routes of ``service`` (and ``POST /v1/feedback`` when ``feedback``, an
    ``assistant.feedback.ratings.Feedback``, is given: it rates the replies ``service`` remembered)."""
    router = APIRouter(prefix="/v1")

    async def body_of(request: Request) -> dict:
        service.check_key(request.headers.get("authorization"))
        declared = request.headers.get("content-length", "")
        too_large = ApiError(413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB.")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        raw, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise too_large
                raw.append(chunk)
        except ClientDisconnect:
            raise ApiError(400, "The client disconnected before the request body arrived.") from None
        return await run_in_threadpool(parse_body, b"".join(raw))

    def failure(exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @router.get("/models")
    async def models(request: Request):
        try:
            service.check_key(request.headers.get("authorization"))
        except ApiError as exc:
            return failure(exc)
        return await run_in_threadpool(service.models)  # reads the models folder

    @router.post("/chat/completions")
    async def chat(request: Request):
        stop = threading.Event()
        try:
            response, events = await _run_stoppable(request, service.chat, await body_of(request), stop)
        except ApiError as exc:
            return failure(exc)
        if events is not None:  # X-Queue-Position: 0 decodes at once, k waits k-th in line for a slot
            place = events.queue_position
            return StoppingEventStream(events, stop, None if place is None else {"X-Queue-Position": str(place)})
        return response

    @router.post("/completions")
    async def completions(request: Request):
        try:
            return await _run_stoppable(request, service.completions, await body_of(request), threading.Event())
        except ApiError as exc:
            return failure(exc)

    @router.post("/embeddings")
    async def embeddings(request: Request):
        try:
            return await run_in_threadpool(service.embeddings, await body_of(request))
        except ApiError as exc:
            return failure(exc)

    if feedback is not None:
        @router.post("/feedback")
        async def rate(request: Request):
            try:
                return await run_in_threadpool(rate_response, feedback, await body_of(request))
            except ApiError as exc:
                return failure(exc)

    return router

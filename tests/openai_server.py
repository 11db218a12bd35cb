"""Serve the ``/v1`` routes of an ``OpenAIService`` on a loaded model in this process (uvicorn in a thread), so a
test can send hostile bodies over real HTTP and also look at the model lock while requests run."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from tests.app_server import free_port


@contextmanager
def serving_api(loaded, model_id: str = "served-model", api_keys: list[str] | None = None, feedback=None):
    """Yield the base URL (ending in ``/v1``) of the API on ``loaded``; stop the server afterwards. ``feedback``
    (an ``assistant.feedback.ratings.Feedback``): replies are remembered and ``POST /v1/feedback`` rates them."""
    import uvicorn
    from fastapi import FastAPI

    from assistant.chat import ChatEngine
    from assistant.openai_api import OpenAIService
    from assistant.openai_routes import routes

    app = FastAPI()
    responses = feedback.responses if feedback is not None else None
    app.include_router(routes(OpenAIService(ChatEngine(loaded), model_id, api_keys, responses), feedback=feedback))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=15)

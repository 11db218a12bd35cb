"""Serve the ``/v1`` routes of an ``OpenAIService`` on a loaded model (or a pool of models) in this process (uvicorn in a thread), so a
test can send hostile bodies over real HTTP and also look at the model lock while requests run."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.app_server import serving_asgi


@contextmanager
def serving_api(loaded, model_id: str = "served-model", api_keys: list[str] | None = None, feedback=None):
    """Yield the base URL (ending in ``/v1``) of the API on ``loaded``; stop the server afterwards. ``feedback``
    (an ``assistant.feedback.ratings.Feedback``): replies are remembered and ``POST /v1/feedback`` rates them."""
    from assistant.chat import Chat
    from assistant.core.model_catalog import ModelCatalog, ModelEntry
    from assistant.model_pool import ModelPool, ServedModel

    def refuse(entry):
        raise AssertionError(f"this test server serves only {model_id}; it was asked to load {entry.id}")

    pool = ModelPool(ModelCatalog(Path(tempfile.mkdtemp(prefix="no-models-"))), refuse)
    pool.adopt(ServedModel(ModelEntry(model_id, loaded.name, "--model", "test", loaded.location), loaded,
                           Chat(loaded)))
    with serving_pool(pool, api_keys, feedback) as url:
        yield url


@contextmanager
def serving_pool(pool, api_keys: list[str] | None = None, feedback=None):
    """Yield the base URL (ending in ``/v1``) of the API on a ``ModelPool``; stop the server afterwards."""
    from fastapi import FastAPI

    from assistant.openai_api import OpenAIService
    from assistant.openai_routes import routes

    app = FastAPI()
    responses = feedback.responses if feedback is not None else None
    app.include_router(routes(OpenAIService(pool, api_keys, responses), feedback=feedback))
    with serving_asgi(app) as url:
        yield url + "/v1"

"""LLM Assistant Studio: the web app's entry point.

    python app.py                                   # embedded SmolLM2-135M-Instruct (GGUF) on llama.cpp, port 7860
    python app.py --model ./my-model --quant none --port 7861
    python app.py --engine transformers             # the same model on transformers + bitsandbytes NF4
    python app.py --help                            # every flag and its environment variable

Settings from flags/env -> check the port -> load the model once -> build the UI -> launch.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

# bitsandbytes wraps its CPU kernels in torch.compile when imported, which loads TorchDynamo
# and Inductor (a noticeable share of the start). The app compiles nothing, and those kernels trained
# no slower uncompiled here. Set TORCHDYNAMO_DISABLE=0 to have them compiled anyway.
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

from assistant.core.errors import UserError  # noqa: E402  (after the environment is set)
from assistant.settings import AppSettings  # noqa: E402


def ensure_port_free(host: str, port: int) -> None:
    """Fail before the slow model load if the port is taken.

    SO_REUSEADDR, as the web server itself binds: connections of a process that just died (kill -9)
    linger in TIME-WAIT for a minute, and must not stop the restart that recovers from it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"Port {port} on {host} is not available ({exc.strerror}). "
                f"Stop what is using it or start with --port {port + 1}."
            ) from None


def quiet_libraries() -> None:
    """Hide progress bars and log lines a user cannot act on."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = AppSettings.from_cli_and_env(argv)
        ensure_port_free(settings.host, settings.port)
        quiet_libraries()
        started = time.perf_counter()

        services = load_services(settings)
        from assistant.ui.app_ui import build_app, i18n

        demo = build_app(services)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loaded = services.pool.get().loaded
    print(f"Loaded {loaded.describe()} in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        serve(demo, services, settings, i18n())
    finally:
        services.jobs.close()  # a running job checkpoints, so it can be resumed after a restart
    return 0


def serve(demo, services, settings: AppSettings, translations) -> None:
    """The UI at ``/`` and the OpenAI-compatible API at ``/v1``, one server, one port, one pool of models."""
    import uvicorn

    app = web_app(demo, services, settings, translations)
    print(f"* Running on local URL:  http://{settings.host}:{settings.port}  (OpenAI API at /v1)", flush=True)
    # Open browser connections (the queue's event streams) must not hold a stop or restart for long.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=3)


def web_app(demo, services, settings: AppSettings, translations):
    """The FastAPI app ``serve`` runs (tests run the same one in a thread): ``/v1`` routes, then the UI at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    from assistant.openai_api import OpenAIService
    from assistant.openai_routes import routes
    from assistant.ui.uploads import guard_mounted_app, serving_paths

    app = FastAPI(title="LLM Assistant Studio", docs_url=None, redoc_url=None)
    responses = services.feedback.responses if services.feedback is not None else None
    app.include_router(routes(OpenAIService(services.pool, settings.api_key_list(), responses),
                              feedback=services.feedback))
    demo.queue(default_concurrency_limit=4)
    app = gr.mount_gradio_app(app, demo, path="/", auth=settings.auth_pairs(), i18n=translations, show_error=False,
                              max_file_size=f"{settings.max_upload_mb}mb", enable_monitoring=settings.monitoring,
                              **serving_paths(settings.data_dir, settings.cache_dir))
    guard_mounted_app(demo)  # API calls may then name only files this server received as uploads
    return app


def load_services(settings: AppSettings):
    """Load the starting model and build what every session shares. The UI serves the pool's default model
    through ``ActiveModel``, so picking another model moves every tab over without a restart."""
    from assistant.active_model import ActiveModel
    from assistant.agent import Agent
    from assistant.agent_router import AgentRouter
    from assistant.chat import Chat
    from assistant.documents.readers import DocumentLimits
    from assistant.documents.router import DocsRouter
    from assistant.documents.shared import open_shared
    from assistant.faq.embeddings import default_encoder
    from assistant.faq.knowledge_base import load_builtin
    from assistant.feedback.ratings import Feedback
    from assistant.feedback.store import FeedbackStore
    from assistant.model_pool import ModelPool, model_builder
    from assistant.served_adapters import ServedAdapters
    from assistant.tasks.faq import FaqRouter
    from assistant.ui.app_ui import Services
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager
    from finetune.process_runner import process_runner

    store = AdapterStore(settings.data_dir / "adapters")
    pool = ModelPool(settings.catalog(), model_builder(settings, store), settings.max_loaded_models,
                     settings.max_model_memory_mb * 1024 * 1024, settings.context)
    pool.switch_default(settings.model)
    loaded = ActiveModel(pool)
    adapters = ServedAdapters(loaded, store, settings.model, settings.machine())
    kb = load_builtin()
    router = FaqRouter(kb)
    router.warm()  # indexes the FAQ in the background; the first question does not wait
    chat = Chat(loaded, adapters)
    # The project's router (MiniLM loads on first use), also for a model whose template takes tools: on the routing
    # set's test split it routed 0.944 right, Qwen2.5-Coder-0.5B picking the tool itself (NativeToolRouter) 0.333
    # (bench/README.md, "Agent routing"; bench/agent_routing.py --router native).
    limits = DocumentLimits(max_bytes=settings.max_upload_mb * 1024 * 1024)
    documents = open_shared(settings.docs_dir, settings.data_dir, settings.qdrant_url, limits,
                            log=lambda line: print(line, file=sys.stderr))
    docs_router = DocsRouter(documents) if documents is not None else None
    agent = Agent(loaded, AgentRouter(router, default_encoder), router, docs_router, adapters=adapters)
    return Services(chat, adapters, kb, router, JobManager(settings.data_dir, process_runner(settings.machine())), store,
                    admin_password=settings.admin_password, agent=agent, documents=documents, docs_limits=limits,
                    pool=pool, feedback=Feedback(FeedbackStore(settings.data_dir)), served_reference=settings.model)


if __name__ == "__main__":
    sys.exit(main())

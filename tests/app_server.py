"""Start ``app.py`` in a subprocess on a free loopback port and wait until it serves (``running_app``), run the
same app in this process (``app_in_process``: app.py's own services and web app, no start-up of a new Python),
or serve a ``gr.Blocks`` built by the test in this process (``serving``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from assistant.core.model_sources import SMALL_CHAT_MODEL

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo, i18n=None):
    """Yield the URL of ``demo`` served (queued) on a free loopback port; close it afterwards."""
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                        i18n=i18n)
    try:
        yield demo.local_url
    finally:
        demo.close()


@contextmanager
def running_app(*args: str, timeout: float = 240, env: dict | None = None):
    """Yield the base URL of a running app; stop it afterwards. It serves the small SmolLM2 unless ``env``
    names ``ASSISTANT_MODEL`` (or ``args`` pass ``--model``): most tests are about the app, not the model."""
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"app-{port}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *args], cwd=REPO_ROOT, stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_MODEL": SMALL_CHAT_MODEL, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"app exited with {proc.returncode}:\n{log.read()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"app did not start within {timeout} s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def serving_asgi(app):
    """Yield the base URL (``http://127.0.0.1:PORT``) of the ASGI ``app`` served by uvicorn in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def app_in_process(*args: str):
    """Yield (base URL ending in ``/``, the services) of the app as ``python app.py ARGS`` builds it, in this
    process; stop it afterwards."""
    import app as app_module
    from assistant.settings import AppSettings
    from assistant.ui.app_ui import build_app, i18n

    settings = AppSettings.from_cli_and_env(list(args))
    services = app_module.load_services(settings)
    try:
        demo = build_app(services)
        with serving_asgi(app_module.web_app(demo, services, settings, i18n())) as url:
            yield url + "/", services
    finally:
        services.jobs.close()

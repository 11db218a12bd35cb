"""``python app.py`` fails fast with one line and exit code 2 on bad settings."""

import socket
import subprocess
import sys

from tests.app_server import REPO_ROOT, free_port


def run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_port_in_use_exits_2_with_the_fix():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_app("--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: Port {port} on 127.0.0.1 is not available")
    assert f"--port {port + 1}" in result.stderr


def test_folder_that_is_not_a_model_exits_2(tmp_path):
    result = run_app("--model", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2
    assert "is not a model" in result.stderr and "Traceback" not in result.stderr


def test_unknown_hub_id_exits_2_offline():
    result = run_app("--model", "no-such-org/no-such-model", "--quant", "fp32", "--port", str(free_port()))
    assert result.returncode == 2
    assert "Could not load model hub id" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_flags_and_environment_variables():
    result = run_app("--help")
    assert result.returncode == 0
    for text in ("--model", "--quant", "--port", "ASSISTANT_MODEL", "GRADIO_SERVER_PORT", "smollm2-135m-instruct"):
        assert text in result.stdout


def test_a_port_left_in_time_wait_by_a_killed_server_is_free_again():
    """kill -9 leaves the dead server's accepted connections in TIME-WAIT; a restart must still bind."""
    from app import ensure_port_free

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first, so its end of the connection goes to TIME-WAIT
    client.close()
    server.close()
    ensure_port_free("127.0.0.1", port)  # raised "Port ... not available" before SO_REUSEADDR

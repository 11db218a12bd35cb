"""No caller can make the server read a file it did not receive as an upload.

Unit tests of ``assistant.ui.uploads``, then the running app probed over raw HTTP: every event that
takes a file (public by name, private by ``fn_index``) is sent a ``FileData`` naming a file outside
Gradio's upload folder (in the system temp dir, which Gradio's default rules would let through), and
``/gradio_api/file=`` is asked for it directly. None may answer with its content or copy it into the
cache; a real upload still works.
"""

import json
import os
import uuid
from pathlib import Path

import pytest

from assistant.core.errors import InputError
from assistant.ui import uploads
from tests.app_server import running_app

MARKER = "SECRET-MARKER-5f1c"


@pytest.fixture
def upload_dir(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder, a sibling of the test's other files (which are therefore not uploads)."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_a_file_in_the_upload_folder_is_accepted_in_every_shape(upload_dir):
    upload = upload_dir / "abc123" / "reviews.csv"
    upload.parent.mkdir()
    upload.write_text("text\ngood\n")
    for value in (str(upload), upload, {"path": str(upload), "orig_name": "reviews.csv"}):
        assert uploads.uploaded_file(value) == upload.resolve()


@pytest.mark.parametrize("case", ["outside", "link-out", "dot-dot", "folder", "missing", "empty", "number"])
def test_anything_else_is_refused_without_echoing_the_path(upload_dir, tmp_path, case):
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER)
    link = upload_dir / "link.txt"
    link.symlink_to(secret)
    value = {"outside": str(secret), "link-out": str(link), "dot-dot": f"{upload_dir}/../secret.txt",
             "folder": str(upload_dir), "missing": str(upload_dir / "gone.csv"), "empty": "", "number": 7}[case]
    with pytest.raises(InputError) as refused:
        uploads.uploaded_file(value, "data_file")
    assert "'data_file'" in str(refused.value)
    assert str(tmp_path) not in str(refused.value)


def test_serving_paths_block_the_data_dir_and_the_model_cache(tmp_path):
    paths = uploads.serving_paths(tmp_path / "data", tmp_path / "cache")
    assert paths["allowed_paths"] == [str((tmp_path / "data" / "exports").resolve())]
    assert str((tmp_path / "cache").resolve()) in paths["blocked_paths"]
    assert str((tmp_path / "data" / "adapters").resolve()) in paths["blocked_paths"]


# --- the running app, over raw HTTP ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gradio-cache")
    env = {"ASSISTANT_DATA_DIR": str(tmp_path_factory.mktemp("data")), "GRADIO_TEMP_DIR": str(cache)}
    with running_app(env=env) as url:
        yield url.rstrip("/"), cache


@pytest.fixture(scope="module")
def secrets_outside(tmp_path_factory) -> dict[str, str]:
    """One secret file per reader type, in the temp dir but outside the upload folder."""
    folder = tmp_path_factory.mktemp("outside")
    files = {"csv": f"text\n{MARKER}\n", "txt": f"{MARKER}\n", "md": f"# Notes\n\n{MARKER} is the password.\n",
             "jsonl": json.dumps({"text": MARKER, "label": "a"}) + "\n"}
    paths = {}
    for suffix, content in files.items():
        path = folder / f"secret.{suffix}"
        path.write_text(content)
        paths[suffix] = str(path)
    return paths


def file_data(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def queue_call(url: str, fn_index: int, data: list) -> str:
    """Run one event by ``fn_index`` through Gradio's queue; the whole event stream as text."""
    import httpx

    session = uuid.uuid4().hex
    joined = httpx.post(f"{url}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                               "session_hash": session}, timeout=30)
    if joined.status_code != 200:
        return joined.text
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=120) as r:
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if '"process_completed"' in line:
                break
    return "\n".join(lines)


def file_events(config: dict) -> list[tuple[int, list]]:
    """(fn_index, a data list naming a file at each file input) for every event that takes a file."""
    components = {c["id"]: c for c in config["components"]}
    events = []
    for index, dependency in enumerate(config["dependencies"]):
        inputs = [components[i] for i in dependency["inputs"]]
        if not any(c["type"] in ("file", "uploadbutton") for c in inputs):
            continue
        events.append((index, inputs))
    return events


def data_for(inputs: list, path: str) -> list:
    data = []
    for component in inputs:
        if component["type"] in ("file", "uploadbutton"):
            many = component["props"].get("file_count") in ("multiple", "directory")
            data.append([file_data(path)] if many else file_data(path))
        else:
            data.append(component["props"].get("value"))
    return data


def cached_secret(cache: Path) -> list[Path]:
    found = []
    for root, _, names in os.walk(cache):
        for name in names:
            path = Path(root) / name
            try:
                if MARKER in path.read_text(errors="ignore"):
                    found.append(path)
            except OSError:
                pass
    return found


@pytest.mark.real
def test_no_event_reads_a_file_named_by_path(app, secrets_outside):
    import httpx

    url, cache = app
    config = httpx.get(f"{url}/config", timeout=30).json()
    events = file_events(config)
    assert len(events) >= 6, "the classify, translate, FAQ, documents, fine-tune and /docs_ask file inputs"
    for fn_index, inputs in events:
        for path in secrets_outside.values():
            stream = queue_call(url, fn_index, data_for(inputs, path))
            assert MARKER not in stream, (fn_index, path)
    assert cached_secret(cache) == []


@pytest.mark.real
def test_named_endpoints_and_the_file_route_refuse_paths(app, secrets_outside):
    import httpx

    url, cache = app
    body = {"data": [[file_data(secrets_outside["md"])], "What is the password?", False]}
    started = httpx.post(f"{url}/gradio_api/call/docs_ask", json=body, timeout=30)
    result = httpx.get(f"{url}/gradio_api/call/docs_ask/{started.json()['event_id']}", timeout=120).text
    assert MARKER not in result and "event: error" in result
    for path in [*secrets_outside.values(), "/etc/passwd"]:
        served = httpx.get(f"{url}/gradio_api/file={path}", timeout=30)
        assert served.status_code == 403 and MARKER not in served.text
    assert cached_secret(cache) == []


@pytest.mark.real
def test_a_real_upload_is_still_read(app, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = app
    notes = tmp_path / "office.md"
    notes.write_text("# Office\n\nThe office opens at nine o'clock every weekday morning.\n")
    answer = Client(url, verbose=False).predict([handle_file(str(notes))], "When does the office open?",
                                                False, api_name="/docs_ask")
    assert "nine" in answer["answer"] and answer["sources"][0]["file"] == "office.md"

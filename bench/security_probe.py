"""A bounded probe of the running app with hostile requests, on loopback only: what each category of
attack gets back, and whether the server stays up, answers the next person and keeps its memory.

    python bench/security_probe.py                      # SmolLM2 (fast); prints the table and RSS
    python bench/security_probe.py --model qwen2.5-coder-0.5b-instruct

The app runs as a user would deploy it (admin password and API keys set) in a child process with its own
data dir and Gradio upload folder. Each case ends in one of: a clear error (a 4xx / Gradio error with a
message, or the request handled correctly), unhandled (a 500, an empty error), crash or hang (the server
stopped answering, or the next request waited past ``NEXT_REQUEST_S``), data lost or leaked (a secret
file's content in a reply or in Gradio's cache). Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import document_files as docs  # noqa: E402  (hostile document builders shared with the tests)

KEY, ADMIN = "probe-key", "probe-admin"
MODEL_ID = ""  # the served model's /v1 id, read from /v1/models once the app is up
MARKER = "PROBE-SECRET-7d2a"
NEXT_REQUEST_S = 30
HISTORY_S = 600
OUTCOMES = ("clear", "unhandled", "crash/hang", "leaked")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Probe:
    def __init__(self, url: str, pid: int, work: Path, uploads: Path):
        import httpx

        self.url, self.pid, self.work, self.uploads = url, pid, work, uploads
        self.http = httpx.Client(timeout=120)
        self.results: dict[str, list[tuple[str, str]]] = {}

    # --- the server ---------------------------------------------------------------------------------
    def alive(self) -> bool:
        try:
            return self.http.get(self.url, timeout=NEXT_REQUEST_S).status_code == 200
        except Exception:
            return False

    def rss_mib(self) -> float:
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20

    def record(self, category: str, case: str, outcome: str) -> None:
        if outcome != "leaked" and not self.alive():
            outcome = "crash/hang"
        self.results.setdefault(category, []).append((case, outcome))
        print(f"  {category:<18} {case:<44} {outcome}", flush=True)

    # --- Gradio -------------------------------------------------------------------------------------
    def gradio_call(self, api: str, data: list) -> tuple[str, str]:
        started = self.http.post(f"{self.url}gradio_api/call/{api}", json={"data": data})
        if started.status_code != 200:
            return ("error" if started.status_code < 500 else "500"), started.text
        stream = self.http.get(f"{self.url}gradio_api/call/{api}/{started.json()['event_id']}").text
        return ("error" if "event: error" in stream else "complete"), stream

    def gradio_outcome(self, api: str, data: list) -> str:
        event, text = self.gradio_call(api, data)
        if MARKER in text:
            return "leaked"
        if event == "500":
            return "unhandled"
        if event == "error":
            message = text.split("data:", 1)[-1].strip()
            return "clear" if message not in ("", "null") else "unhandled"
        return "clear"

    def fn_index_call(self, fn_index: int, data: list) -> str:
        session = uuid.uuid4().hex
        joined = self.http.post(f"{self.url}gradio_api/queue/join",
                                json={"data": data, "fn_index": fn_index, "session_hash": session})
        text = joined.text
        if joined.status_code == 200:
            with self.http.stream("GET", f"{self.url}gradio_api/queue/data", params={"session_hash": session}) as r:
                for line in r.iter_lines():
                    text += line
                    if '"process_completed"' in line:
                        break
        return "leaked" if MARKER in text else ("unhandled" if joined.status_code >= 500 else "clear")

    # --- /v1 ----------------------------------------------------------------------------------------
    def v1(self, body, path: str = "chat/completions", scheme: str = "Bearer", raw: bytes | None = None,
           timeout: float = 120):
        headers = {"authorization": f"{scheme} {KEY}", "content-type": "application/json"}
        content = raw if raw is not None else json.dumps(body).encode()
        return self.http.post(f"{self.url}v1/{path}", content=content, headers=headers, timeout=timeout)

    def v1_outcome(self, body=None, raw: bytes | None = None, expect: int = 400, **kwargs) -> str:
        try:
            reply = self.v1(body, raw=raw, **kwargs)
        except Exception:
            return "crash/hang"
        if reply.status_code >= 500:
            return "unhandled"
        if expect == 400:
            ok = reply.status_code == 400 and reply.json().get("error", {}).get("message")
        else:
            ok = reply.status_code == expect
        return "clear" if ok else "unhandled"


def message(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def file_data(path: Path) -> dict:
    return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def probe_files(p: Probe) -> None:
    outside = p.work / "outside"
    outside.mkdir()
    secrets = {}
    for suffix, text in {"csv": f"text\n{MARKER}\n", "txt": f"{MARKER}\n", "md": f"# Notes\n\n{MARKER}\n"}.items():
        secrets[suffix] = outside / f"secret.{suffix}"
        secrets[suffix].write_text(text)
    for name in ("md", "txt"):
        p.record("file paths", f"/docs_ask FileData secret.{name}",
                 p.gradio_outcome("docs_ask", [[file_data(secrets[name])], "What is the secret?", False]))
    p.record("file paths", "/docs_ask FileData /etc/passwd",
             p.gradio_outcome("docs_ask", [[file_data(Path("/etc/passwd"))], "root?", False]))
    p.record("file paths", "/finetune_start data_file secret.csv", p.gradio_outcome(
        "finetune_start", [file_data(secrets["csv"]), "classification", "", "auto", "supervised", 1, 1, "", ADMIN]))
    config = p.http.get(f"{p.url}config").json()
    components = {c["id"]: c for c in config["components"]}
    for index, dependency in enumerate(config["dependencies"]):
        inputs = [components[i] for i in dependency["inputs"]]
        if not any(c["type"] == "file" for c in inputs):
            continue
        for suffix in ("csv", "txt"):
            data = [([file_data(secrets[suffix])] if c["props"].get("file_count") == "multiple"
                     else file_data(secrets[suffix])) if c["type"] == "file" else c["props"].get("value")
                    for c in inputs]
            p.record("file paths", f"fn_index {index} secret.{suffix}", p.fn_index_call(index, data))
    for path in (secrets["txt"], Path("/etc/passwd")):
        served = p.http.get(f"{p.url}gradio_api/file={path}")
        p.record("file paths", f"GET /gradio_api/file={path.name}",
                 "leaked" if MARKER in served.text or "root:" in served.text else "clear")
    cached = [f for f in p.uploads.rglob("*") if f.is_file() and MARKER in f.read_text(errors="ignore")]
    p.record("file paths", "secret copied into Gradio's cache", "leaked" if cached else "clear")


def probe_schemas(p: Probe) -> None:
    def schema_body(schema: dict) -> dict:
        return {"model": MODEL_ID, "messages": message("Give JSON."), "max_tokens": 8,
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}

    nested: dict = {"type": "string"}
    for _ in range(200):
        nested = {"type": "object", "properties": {"a": nested}}
    cases = {"string minLength 1e9": {"type": "string", "minLength": 1_000_000_000},
             "enum of 20,000 values": {"type": "string", "enum": [f"v{i}" for i in range(20_000)]},
             "array minItems 1e9": {"type": "array", "items": {"type": "integer"}, "minItems": 1_000_000_000},
             "objects nested 200 deep": nested,
             "pattern with huge repeat": {"type": "string", "pattern": "a{1000000000}"}}
    for case, schema in cases.items():
        p.record("/v1 schemas", case, p.v1_outcome(schema_body(schema)))


def probe_disconnects(p: Probe) -> None:
    body = {"model": MODEL_ID, "messages": message("Write a very long story about a lighthouse keeper."),
            "max_tokens": 1500, "stream": True, "temperature": 0}
    for attempt in range(3):
        with p.http.stream("POST", f"{p.url}v1/chat/completions", json=body,
                           headers={"authorization": f"Bearer {KEY}"}) as reply:
            for i, _ in enumerate(reply.iter_lines()):
                if i >= 5:
                    break
        began = time.perf_counter()
        try:
            quick = p.v1({"model": MODEL_ID, "messages": message("Hi"), "max_tokens": 4})
            waited = time.perf_counter() - began
            outcome = "clear" if quick.status_code == 200 and waited < NEXT_REQUEST_S else "crash/hang"
        except Exception:
            waited, outcome = time.perf_counter() - began, "crash/hang"
        p.record("disconnects", f"stream closed after 5 chunks ({attempt + 1}); next in {waited:.1f} s", outcome)


def probe_documents(p: Probe) -> None:
    from gradio_client import Client, handle_file

    client = Client(p.url, verbose=False)
    folder = p.work / "documents"
    folder.mkdir()
    files = {"DOCX with 100 MB of XML": docs.docx_markup_flood(folder / "markup.docx", 100 * 2**20),
             "DOCX with 1 GB of spaces": docs.docx_space_flood(folder / "spaces.docx", 2**30),
             "PDF with a 1 GB flate stream": docs.pdf_flate_bomb(folder / "bomb.pdf", 2**30)}
    for case, path in files.items():
        began = time.perf_counter()
        try:
            result = client.predict([handle_file(str(path))], "What is this?", False, api_name="/docs_ask")
            outcome = "clear" if result.get("problems") else "unhandled"
        except Exception as exc:
            outcome = "clear" if str(exc).strip() else "unhandled"
        p.record("hostile documents", f"{case} ({time.perf_counter() - began:.1f} s)", outcome)


def probe_low(p: Probe) -> None:
    deep: object = "hi"
    for _ in range(900):
        deep = [deep]
    cases = {
        "body of 100,000 '['": dict(raw=b"[" * 100_000),
        "content nested 900 lists deep": dict(body={"model": MODEL_ID, "messages": [{"role": "user", "content": deep}]}),
        "tool_choice function: 'w'": dict(body={"model": MODEL_ID, "messages": message("Hi"), "tool_choice": {
            "type": "function", "function": "w"}, "tools": [{"type": "function", "function": {"name": "w"}}]}),
        "n = 3": dict(body={"model": MODEL_ID, "messages": message("Hi"), "n": 3, "max_tokens": 4}),
        "max_tokens = 0": dict(body={"model": MODEL_ID, "messages": message("Hi"), "max_tokens": 0}),
        "stream = 'yes'": dict(body={"model": MODEL_ID, "messages": message("Hi"), "stream": "yes", "max_tokens": 4}),
        "lowercase 'bearer' (accepted)": dict(body={"model": MODEL_ID, "messages": message("Hi"), "max_tokens": 4},
                                              scheme="bearer", expect=200),
    }
    for case, kwargs in cases.items():
        p.record("/v1 malformed", case, p.v1_outcome(**kwargs))
    # Trimming 2,000 turns to the context is the part under test (70 s before); prefilling the ~4,000 tokens kept
    # then takes what the CPU takes, so this case gets HISTORY_S, not NEXT_REQUEST_S.
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " * 20} for i in range(1999)]
    began = time.perf_counter()
    outcome = p.v1_outcome(body={"model": MODEL_ID, "messages": history + message("Hi"), "max_tokens": 4}, expect=200,
                           timeout=HISTORY_S)
    p.record("/v1 malformed", f"2,000-message history ({time.perf_counter() - began:.1f} s)", outcome)
    data = p.work / "rows.csv"
    data.write_text("text,label\n" + "".join(f"row {i},a\n" for i in range(20)))
    from gradio_client import Client, handle_file

    client = Client(p.url, verbose=False)
    for case, args in {"/finetune_start unknown task": ("sentiment", "supervised"),
                       "/finetune_start preference file with errors": ("preference", "preference")}.items():
        try:
            client.predict(handle_file(str(data)), args[0], "", "auto", args[1], 1, 1, "", ADMIN,
                           api_name="/finetune_start")
            outcome = "unhandled"
        except Exception as exc:
            text = str(exc)
            outcome = "clear" if text.strip() and "report" not in text and str(p.work) not in text else "unhandled"
        p.record("training API", case, outcome)
    try:
        client.predict("no-such-job", ADMIN, api_name="/finetune_resume")
        outcome = "unhandled"
    except Exception as exc:
        outcome = "clear" if str(exc).strip() and str(p.work) not in str(exc) else "unhandled"
    p.record("training API", "/finetune_resume unknown job", outcome)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="security-probe-") as work:
        work = Path(work)
        uploads = work / "gradio"
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_MODEL": args.model, "ASSISTANT_API_KEYS": KEY,
               "ASSISTANT_ADMIN_PASSWORD": ADMIN, "ASSISTANT_DATA_DIR": str(work / "data"),
               "GRADIO_TEMP_DIR": str(uploads)}
        log = open(work / "app.log", "w+")
        app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
        try:
            probe = Probe(f"http://127.0.0.1:{port}/", app.pid, work, uploads)
            deadline = time.monotonic() + 300
            while not probe.alive():
                if app.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    sys.exit(f"the app did not start:\n{log.read()[-3000:]}")
                time.sleep(1)
            global MODEL_ID
            MODEL_ID = probe.http.get(f"{probe.url}v1/models", headers={"authorization": f"Bearer {KEY}"}).json()[
                "data"][0]["id"]
            probe.v1({"model": MODEL_ID, "messages": message("Hi"), "max_tokens": 4})  # warm: the model's first reply
            before = probe.rss_mib()
            files_before = sum(1 for f in uploads.rglob("*") if f.is_file())
            for step in (probe_files, probe_schemas, probe_disconnects, probe_documents, probe_low):
                step(probe)
            after = probe.rss_mib()
            empty = [str(f.relative_to(uploads)) for f in uploads.rglob("*") if f.is_file() and f.stat().st_size == 0]
            files_after = sum(1 for f in uploads.rglob("*") if f.is_file())
        finally:
            app.terminate()
            app.wait(timeout=30)
    print("\n| category | tried | clear error | unhandled | crash or hang | data lost or leaked |")
    print("|---|---|---|---|---|---|")
    for category, rows in probe.results.items():
        counts = [sum(outcome == o for _, outcome in rows) for o in OUTCOMES]
        print(f"| {category} | {len(rows)} | " + " | ".join(str(c) for c in counts) + " |")
    print(f"\nApp RSS after its first reply {before:.0f} MiB, after the probe {after:.0f} MiB. Files in Gradio's "
          f"upload folder: {files_before} before, {files_after} after ({len(empty)} empty{': ' if empty else ''}"
          f"{', '.join(empty[:5])}). Model: {args.model}.")


if __name__ == "__main__":
    main()

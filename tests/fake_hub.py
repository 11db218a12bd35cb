"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: the endpoints ``HfApi.create_repo`` and
``HfApi.create_commit`` call, speaking the same JSON / NDJSON protocol, files kept in memory.

    with FakeHub(token="hf_...") as hub:
        api = HfApi(endpoint=hub.url)   # then create_repo / create_commit as against the real Hub
        hub.repos["alice/x"]["files"]   # {path: bytes} after a commit

Endpoints: POST /api/repos/create, POST /api/validate-yaml, POST /api/models/{repo}/preupload/{rev}
(every file answers uploadMode "regular", so contents travel base64 inside the commit instead of through
LFS/Xet storage), POST /api/models/{repo}/commit/{rev}, GET /api/models/{repo}. A request without
``Authorization: Bearer <token>`` gets 401. ``echo_token_in_errors = True`` makes every answer a 403 whose
message repeats the Authorization header, like a careless proxy: the client must not pass that on.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_REPO_PATH = re.compile(r"/api/models/([^/]+/[^/]+?)(?:/(preupload|commit)/([^/?]+))?(?:\?.*)?$")


class FakeHub:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []  # (method, path) of every request
        self.echo_token_in_errors = False
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                hub._handle(self, "GET")

            def do_POST(self):
                hub._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- protocol ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self.calls.append((method, request.path))
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        auth = request.headers.get("Authorization", "")
        if self.echo_token_in_errors:
            return _reply(request, 403, {"error": f"Authorization '{auth}' has no write access to this namespace"})
        if auth != f"Bearer {self.token}":
            return _reply(request, 401, {"error": "Invalid credentials in Authorization header"})
        path = request.path
        if method == "POST" and path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in self.repos:
                return _reply(request, 409, {"error": "You already created this model repo",
                                             "url": f"{self.url}/{repo_id}"})
            self.repos[repo_id] = {"visibility": payload.get("visibility", "public"), "files": {}, "commits": []}
            return _reply(request, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id})
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(request, json.loads(body)["content"])
        match = _REPO_PATH.match(path)
        repo = self.repos.get(match.group(1)) if match else None
        if repo is None:
            return _reply(request, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        action = match.group(2)
        if method == "POST" and action == "preupload":
            files = json.loads(body)["files"]
            return _reply(request, 200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                    "shouldIgnore": False, "oid": None} for f in files]})
        if method == "POST" and action == "commit":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            for line in lines:
                if line["key"] == "file":
                    repo["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                elif line["key"] != "header":
                    return _reply(request, 400, {"error": f"fake hub: unsupported commit line {line['key']}"})
            repo["commits"].append(header["summary"])
            oid = f"{len(repo['commits']):040x}"
            return _reply(request, 200, {"commitUrl": f"{self.url}/{match.group(1)}/commit/{oid}", "commitOid": oid})
        if method == "GET" and action is None:
            return _reply(request, 200, {"id": match.group(1), "sha": "0" * 40, "private":
                                         repo["visibility"] == "private"})
        return _reply(request, 404, {"error": f"fake hub: no route {method} {path}"})

    def _validate_yaml(self, request, content: str) -> None:
        if not content.startswith("---\n"):
            return _reply(request, 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            data = yaml.safe_load(content.split("---\n", 2)[1])
        except yaml.YAMLError as exc:
            return _reply(request, 400, {"errors": [{"message": str(exc)}]})
        if not isinstance(data, dict) or not isinstance(data.get("tags", []), list):
            return _reply(request, 400, {"errors": [{"message": "metadata must be a mapping; tags a list"}]})
        return _reply(request, 200, {"errors": [], "warnings": []})


def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    data = json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    request.wfile.write(data)

"""The one check every file-taking handler makes: a path from a caller is read only if it is an upload.

A file reaches a handler as a path (``gr.File(type="filepath")``) or as a ``FileData`` dict from an API
call. Gradio copies what its upload route received into its upload folder (``GRADIO_TEMP_DIR``, else
``<tmp>/gradio``); any other path came from the caller, who could name ``/etc/passwd``. Gradio refuses
such paths itself only once it considers the app launched, and ``gr.mount_gradio_app`` (how ``app.py``
serves the UI beside ``/v1``) never marks it so: ``guard_mounted_app`` does, and every handler still
passes its paths through ``uploaded_file`` so no other way in can reach a reader.

    path = uploaded_file(value, "data_file")      # in a handler: the upload's Path, or InputError
    kwargs = serving_paths(data_dir, cache_dir)   # allowed_paths / blocked_paths for gr.mount_gradio_app
    guard_mounted_app(demo)                       # after gr.mount_gradio_app(...)
"""

from __future__ import annotations

import os
from pathlib import Path

from gradio.utils import get_upload_folder

from assistant.core.errors import InputError


def upload_folder() -> Path:
    """Where Gradio keeps what this server received as uploads (resolved: links followed)."""
    return Path(get_upload_folder()).resolve()


def _path_of(value) -> str:
    """The path inside what Gradio or gradio_client hands over: a str, a FileData dict, a tempfile wrapper."""
    if isinstance(value, dict):
        value = value.get("path")
    value = getattr(value, "name", value) if not isinstance(value, (str, os.PathLike)) else value
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else ""


def uploaded_file(value, field: str = "file") -> Path:
    """The resolved path of ``value`` if it is a regular file this server received as an upload.

    Anything else (a path the caller typed, a link out of the upload folder, a folder, a missing file)
    is refused with an ``InputError`` that does not echo the path, so the refusal reveals nothing
    about the server's disk.
    """
    raw = _path_of(value)
    if not raw:
        raise InputError(f"'{field}' must be an uploaded file (in Python: gradio_client.handle_file(path)).")
    resolved = Path(raw).resolve()
    if not resolved.is_relative_to(upload_folder()) or not resolved.is_file():
        raise InputError(f"'{field}' is not a file uploaded to this server. Upload it first (the file box, or "
                         "gradio_client.handle_file(path) in Python); the server reads no other files.")
    return resolved


def serving_paths(data_dir: Path, cache_dir: Path) -> dict[str, list[str]]:
    """``allowed_paths`` / ``blocked_paths`` for ``gr.mount_gradio_app``.

    Allowed: the exports folder, the one place outside the temp dir whose files (adapter zips) handlers
    return for download. Blocked, whatever else Gradio's rules would let through: the rest of the data dir
    (adapters, runs, datasets, document index) and the model cache.
    """
    data_dir, cache_dir = Path(data_dir).resolve(), Path(cache_dir).resolve()
    blocked = [data_dir / name for name in ("adapters", "runs", "datasets", "docs_index")]
    return {"allowed_paths": [str(data_dir / "exports")], "blocked_paths": [str(p) for p in [*blocked, cache_dir]]}


def guard_mounted_app(demo) -> None:
    """Make Gradio check API file paths for a Blocks served by ``gr.mount_gradio_app``.

    Gradio's preprocessing accepts only files in its upload folder, but skips the check until
    ``has_launched`` is set, which ``Blocks.launch()`` does and mounting does not.
    """
    demo.has_launched = True

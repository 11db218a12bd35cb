"""Files the app writes for a person to download (predictions, translations, adapter zips).

Each goes into a folder of its own under one per-process root in the system temp dir. Gradio copies
a returned file into its own cache (which ``gr.Blocks(delete_cache=...)`` sweeps), so the originals
are only needed briefly: every new download first removes folders older than ``KEEP_S``, and the
root goes when the process exits.

    target = download_path("reviews-predictions.csv")   # write there, return str(target)
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path

KEEP_S = 3600
_root: Path | None = None
_lock = threading.Lock()


def _downloads_root() -> Path:
    global _root
    with _lock:
        if _root is None or not _root.is_dir():
            _root = Path(tempfile.mkdtemp(prefix="assistant-studio-downloads-"))
            atexit.register(shutil.rmtree, _root, True)
        return _root


def sweep(now: float | None = None) -> int:
    """Remove download folders older than ``KEEP_S``; how many went."""
    root, now, removed = _downloads_root(), now or time.time(), 0
    for folder in root.iterdir():
        try:
            if now - folder.stat().st_mtime > KEEP_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except FileNotFoundError:  # another request swept it first
            pass
    return removed


def download_path(filename: str) -> Path:
    """A fresh path named ``filename`` (its folder exists) for a file to hand to the browser."""
    sweep()
    return Path(tempfile.mkdtemp(dir=_downloads_root())) / Path(filename).name

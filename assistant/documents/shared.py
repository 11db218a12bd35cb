"""The operator's shared documents: ``--docs-dir`` indexed into a Qdrant collection on disk
(``DATA_DIR/docs_index``) or on a Qdrant server (``--qdrant-url``), synced at start: only new or changed
files are read and embedded, removed ones are deleted, the rest is opened as stored.

    python -m assistant.documents.shared ./my-docs ./data     # sync a folder into ./data/docs_index, print the changes
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from assistant.documents.index import DocumentIndex
from assistant.documents.readers import DocumentLimits
from assistant.core.errors import UserError

INDEX_FOLDER = "docs_index"


def open_shared(docs_dir: str | Path, data_dir: str | Path, qdrant_url: str = "",
                limits: DocumentLimits | None = None, log=print) -> DocumentIndex | None:
    """The synced shared index, or None when no folder is set. ``log`` gets one line per change or problem."""
    if not docs_dir:
        return None
    started = time.perf_counter()
    try:
        index = DocumentIndex.open(Path(data_dir) / INDEX_FOLDER, url=qdrant_url or None)
    except RuntimeError as exc:  # qdrant's local mode locks its folder: one process per folder
        raise UserError(f"The documents index in {Path(data_dir) / INDEX_FOLDER} is in use by another process "
                        f"({exc}). Stop the other server, or give this one its own --data-dir.") from None
    except Exception as exc:  # a Qdrant server that cannot be reached: connection errors of several libraries
        raise UserError(f"Could not open the documents index{' at ' + qdrant_url if qdrant_url else ''}: {exc}. "
                        "Check --qdrant-url (or leave it empty to keep the index on disk).") from None
    for line in index.sync_folder(Path(docs_dir).expanduser(), limits):
        log(f"documents: {line}")
    log(f"documents: {len(index.files())} files, {len(index)} passages from {docs_dir} "
        f"({time.perf_counter() - started:.1f} s)")
    return index


if __name__ == "__main__":
    folder, data = (sys.argv[1:] + ["./docs", "./data"])[:2] if len(sys.argv) > 1 else ("./docs", "./data")
    open_shared(folder, data)

"""Download a hub model the operator allows into the models folder, where the model list then shows it.

``owner/repo/file.gguf`` downloads that one file; ``owner/repo`` the repository's config, tokenizer and
safetensors weights into ``owner--repo/``. huggingface_hub does the transfer (``hf_hub_download`` with
``local_dir``: its partial files wait under ``MODELS_DIR/.cache`` for the next try, hidden from the list);
every file huggingface_hub lists with a sha256 (LFS files: the weights) is then hashed here and compared,
and a file that does not match is deleted. Progress goes through tqdm, which ``gr.Progress(track_tqdm=True)``
shows as a bar.

Refused with the reason, before anything is fetched: hub access off (``HF_HUB_OFFLINE``), an id
``--allow-hub-models`` does not allow (``*`` allows any), a malformed id.

    python -m assistant.model_download owner/repo/file.gguf data/models   # honours HF_HUB_OFFLINE
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from assistant.core.errors import InputError, UserError
from assistant.core.model_catalog import hub_access_problem

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9._/-]{1,200}\.gguf)?$")
REPO_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.md"]
"""What a repository download takes: config, tokenizer, weights, license and card (no duplicate formats)."""


def check_download(hub_id, allowed: tuple[str, ...]) -> str:
    """``hub_id`` stripped, when it may be downloaded now; ``InputError`` saying why not otherwise."""
    if not isinstance(hub_id, str) or not hub_id.strip():
        raise InputError("Type a hub id: owner/repo, or owner/repo/file.gguf for one GGUF file.")
    hub_id = hub_id.strip()
    if not HUB_ID.match(hub_id) or ".." in hub_id or "//" in hub_id:
        raise InputError(f"'{hub_id[:80]}' is not a hub id: give owner/repo, or owner/repo/file.gguf for one GGUF "
                         "file.")
    if "*" not in allowed and hub_id not in allowed:
        raise InputError(f"Downloading '{hub_id}' is not allowed here: the operator can allow it with "
                         "--allow-hub-models (a comma-separated list of hub ids, or * for any).")
    problem = hub_access_problem()
    if problem:
        raise InputError(f"Cannot download '{hub_id}': {problem}.")
    return hub_id


def download_field_state(allowed: tuple[str, ...]) -> str:
    """Why the download field is off ("" when it is on)."""
    if not allowed:
        return "Downloads are off: the operator can allow hub models with --allow-hub-models."
    problem = hub_access_problem()
    return f"Downloads are off: {problem}." if problem else ""


def download(hub_id, models_dir: Path, allowed: tuple[str, ...]) -> Path:
    """Download ``hub_id`` into ``models_dir``; the downloaded file or folder."""
    hub_id = check_download(hub_id, allowed)
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    owner, repo, *rest = hub_id.split("/", 2)
    repo_id = f"{owner}/{repo}"
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        if rest:
            target = Path(hf_hub_download(repo_id, rest[0], local_dir=models_dir))
            _verify(HfApi(), repo_id, {rest[0]: target})
            return target
        folder = models_dir / f"{owner}--{repo}"
        snapshot_download(repo_id, local_dir=folder, allow_patterns=REPO_FILES)
        files = {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}
        _verify(HfApi(), repo_id, files)
        return folder
    except UserError:
        raise
    except Exception as exc:  # network, unknown repo or file, gated repo, disk full
        raise InputError(f"Downloading '{hub_id}' failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                         "Try again: the part already received is kept and the download continues from it.") from exc


def _verify(api, repo_id: str, files: dict[str, Path]) -> None:
    """Compare each file the hub lists with a sha256 against the downloaded bytes; delete a file that differs."""
    for info in api.get_paths_info(repo_id, list(files)):
        expected = getattr(getattr(info, "lfs", None), "sha256", None)
        path = files.get(info.path)
        if not expected or path is None:
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            path.unlink(missing_ok=True)
            raise InputError(f"'{info.path}' from {repo_id} does not match the hub's sha256 and was deleted. "
                             "Download it again.")


if __name__ == "__main__":
    print(download(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "data/models"), ("*",)))

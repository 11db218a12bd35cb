"""Download a hub model the operator allows into the models folder, where the model list then shows it.

``owner/repo/file.gguf`` downloads that one file; ``owner/repo`` the repository's top-level config, tokenizer
and safetensors weights into ``owner--repo/`` (gathered in a hidden folder, moved into place when complete).
Each file is written to a part file under ``MODELS_DIR/.partial`` (hidden from the model list) and renamed into
place only when complete: a download that stops keeps what arrived, and the next try continues from there with
an HTTP range request (huggingface_hub 2.4's own ``hf_hub_download`` deletes a partial file when a try fails).
Sizes are checked, and LFS files (the weights), whose hub etag is their sha256, are hashed: a file that does
not match is deleted. huggingface_hub builds the URLs and the token header and lists a repository's files.
Progress goes through tqdm, which ``gr.Progress(track_tqdm=True)`` shows as a bar.

Refused with the reason, before anything is fetched: hub access off (``HF_HUB_OFFLINE``), an id
``--allow-hub-models`` does not allow (``*`` allows any), a malformed id.

    python -m assistant.model_download owner/repo/file.gguf data/models   # honours HF_HUB_OFFLINE
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import sys
from pathlib import Path

from assistant.core.errors import InputError, UserError
from assistant.core.model_catalog import hub_access_problem

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9._/-]{1,200}\.gguf)?$")
REPO_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.md", "LICENSE*"]
"""What a repository download takes (top-level files): config, tokenizer, weights, license and card."""
PARTIAL = ".partial"
"""Where part files wait for the next try, inside the models folder (hidden from the model list)."""


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
    owner, repo, *rest = hub_id.split("/", 2)
    repo_id = f"{owner}/{repo}"
    models_dir = Path(models_dir)
    try:
        if rest:
            return fetch_file(repo_id, rest[0], models_dir / Path(rest[0]).name, models_dir / PARTIAL)
        from huggingface_hub import HfApi

        folder, staging = models_dir / f"{owner}--{repo}", models_dir / PARTIAL / f"{owner}--{repo}"
        names = [name for name in HfApi().list_repo_files(repo_id)
                 if any(fnmatch.fnmatch(Path(name).name, pattern) for pattern in REPO_FILES) and "/" not in name]
        for name in names:  # into a hidden folder: the list shows the model only once every file is there
            fetch_file(repo_id, name, staging / name, models_dir / PARTIAL)
        if folder.exists():
            raise InputError(f"{folder} exists already: remove or rename it, then download again.")
        staging.replace(folder)
        return folder
    except UserError:
        raise
    except Exception as exc:  # network, unknown repo or file, gated repo, disk full
        raise InputError(f"Downloading '{hub_id}' failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                         "Try again: what was received is kept and the download continues from there.") from exc


def _metadata(url: str, headers: dict) -> tuple[int | None, str | None]:
    """(size, sha256 where the hub gives one) of the file at ``url``: the hub's HEAD answer names an LFS file's
    sha256 and size in ``X-Linked-Etag`` / ``X-Linked-Size`` (``ETag`` / ``Content-Length`` otherwise)."""
    import httpx

    head = httpx.head(url, headers={**headers, "Accept-Encoding": "identity"}, follow_redirects=False, timeout=30)
    if head.status_code >= 400:
        head.raise_for_status()
    etag = (head.headers.get("x-linked-etag") or head.headers.get("etag") or "").strip('"').removeprefix("W/").strip('"')
    size = head.headers.get("x-linked-size") or (head.headers.get("content-length") if head.status_code == 200 else None)
    return (int(size) if size and size.isdigit() else None), (etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None)


def fetch_file(repo_id: str, filename: str, target: Path, partial_dir: Path, endpoint: str | None = None) -> Path:
    """One file of a hub repository to ``target``: continued from ``partial_dir``'s part file where an earlier try
    stopped (an HTTP range request), its size and (for LFS files, whose etag is their sha256) its hash checked,
    then renamed into place. ``endpoint``: the hub's address (None: huggingface_hub's, ``HF_ENDPOINT``)."""
    import httpx
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers
    from tqdm.auto import tqdm

    if target.is_file():
        return target
    url = hf_hub_url(repo_id, filename, endpoint=endpoint)
    headers = build_hf_headers()
    size_expected, expected_sha = _metadata(url, headers)
    partial_dir.mkdir(parents=True, exist_ok=True)
    part = partial_dir / f"{repo_id.replace('/', '--')}--{filename.replace('/', '--')}.part"
    have = part.stat().st_size if part.is_file() else 0
    if size_expected is not None and have > size_expected:
        part.unlink()
        have = 0
    if have:
        headers["Range"] = f"bytes={have}-"
    with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=60) as response:
        if response.status_code not in (200, 206):
            response.raise_for_status()
        have = have if response.status_code == 206 else 0  # a server that ignores the range sends it all
        with part.open("ab" if have else "wb") as out, \
                tqdm(total=size_expected, initial=have, unit="B", unit_scale=True, desc=Path(filename).name) as bar:
            for chunk in response.iter_bytes():  # as it arrives: a cut connection keeps every byte received
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if size_expected is not None and size != size_expected:
        raise InputError(f"The download of '{filename}' stopped at {size:,} of {size_expected:,} bytes. Try again: "
                         "it continues from there.")
    if expected_sha is not None and _sha256(part) != expected_sha:
        part.unlink()
        raise InputError(f"'{filename}' from {repo_id} does not match the hub's sha256 and was deleted. "
                         "Download it again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    part.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    print(download(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "data/models"), ("*",)))

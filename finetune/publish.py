"""Publish a trained adapter to the Hugging Face Hub: the PEFT folder plus a generated model card.

    HF_TOKEN=hf_... HF_HUB_OFFLINE=0 python -m finetune.publish sentiment-v1 --repo-id alice/sentiment-lora
    python -m finetune.publish sentiment-v1 --repo-id alice/sentiment-lora --private
    python -m finetune.publish sentiment-v1 --dry-run            # list the files and print the card; no network

    files = prepare_upload(info, "alice/sentiment-lora")   # {path_in_repo: bytes | Path}, nothing sent
    url = publish(info, "alice/sentiment-lora", token)      # create the repo (exist_ok) and commit the files

What is uploaded: adapter_config.json (``base_model_name_or_path`` set to the base's hub id, never a local
path), adapter_model.safetensors, the tokenizer files, metadata.json (local paths reduced to names),
metrics.jsonl and a README.md model card (finetune/model_card.py). Other files in the folder stay home.

The token comes from the argument or ``HF_TOKEN`` (never a CLI flag: flags end up in shell history). It is
never logged, and any error from the Hub is re-raised as a ``UserError`` with the token replaced by ``***``.
The app runs with ``HF_HUB_OFFLINE=1`` by default; publishing needs ``HF_HUB_OFFLINE=0``.
Tests: ``pytest tests/test_publish.py -q`` (against a local fake Hub on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from assistant.core.errors import InputError, UserError, run_command
from finetune.adapters import AdapterInfo, AdapterStore
from finetune.model_card import base_hub_id, model_card, public_base_name, public_metadata

log = logging.getLogger(__name__)

# Files of an adapter folder that are uploaded; anything else (notes, stray files) is left out.
UPLOADED_PATTERNS = ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "head_config.json",
                     "metadata.json", "metrics.jsonl", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                     "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
                     "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja", "chat_template.json")
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(f"{_REPO_PART}/{_REPO_PART}")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def validate_repo_id(repo_id: str) -> str:
    """``owner/name`` without surrounding spaces, or InputError saying what a hub repo id looks like."""
    clean = (repo_id or "").strip() if isinstance(repo_id, str) else ""
    rule = ("a hub repo id is owner/name: your user or organisation, '/', then 1-96 letters, digits, '-', '_' "
            "or '.', not starting or ending with '-' or '.', without '--' or '..', e.g. 'alice/sentiment-lora'")
    if not clean:
        raise InputError(f"The repo id is empty: {rule}.")
    if not _REPO_ID.fullmatch(clean) or "--" in clean or ".." in clean or clean.endswith(".git"):
        shown = scrub(clean if len(clean) <= 80 else clean[:77] + "...", None)  # a token pasted by mistake
        raise InputError(f"Repo id {shown!r} is not valid: {rule}.")
    return clean


def resolve_token(token: str | None) -> str:
    """The token passed in, else ``HF_TOKEN``; InputError (without any token text) when there is none."""
    value = (token or "").strip() or os.environ.get("HF_TOKEN", "").strip()
    if not value:
        raise InputError("No Hugging Face token: paste a token with write access (huggingface.co/settings/tokens) "
                         "or set the HF_TOKEN environment variable.")
    return value


def scrub(text: str, token: str | None) -> str:
    """``text`` with ``token`` and anything shaped like a hub token (``hf_...``) replaced by ``***``."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("***", text)


def uploaded_files(info: AdapterInfo) -> list[Path]:
    """The files of the adapter folder that ``prepare_upload`` takes, sorted by name (README.md excluded)."""
    return sorted(path for path in info.path.iterdir()
                  if path.is_file() and not path.is_symlink()
                  and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in UPLOADED_PATTERNS))


def prepare_upload(info: AdapterInfo, repo_id: str | None = None, *,
                   license_id: str | None = None) -> dict[str, bytes | Path]:
    """Exactly what ``publish`` uploads: ``{path_in_repo: bytes or a file to read}``. Reads files, sends nothing.

    adapter_config.json and metadata.json are rewritten so that no local path leaves the machine; the
    weights and tokenizer files are uploaded as they are; README.md is the generated model card.
    """
    if info.broken:
        raise UserError(f"Adapter {info.name!r} cannot be published: {info.broken}.")
    files: dict[str, bytes | Path] = {}
    for path in uploaded_files(info):
        files[path.name] = path
    config = json.loads((info.path / "adapter_config.json").read_text(encoding="utf-8"))
    if isinstance(config.get("base_model_name_or_path"), str):
        config["base_model_name_or_path"] = public_base_name(info.base_model or config["base_model_name_or_path"])
    files["adapter_config.json"] = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    metadata = public_metadata(info.metadata)
    files["metadata.json"] = (json.dumps(metadata, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    files["README.md"] = model_card({**info.metadata, "name": info.name}, repo_id, license_id).encode("utf-8")
    return dict(sorted(files.items()))


def publish(info: AdapterInfo, repo_id: str, token: str | None, private: bool = False, api=None, *,
            license_id: str | None = None) -> str:
    """Create ``repo_id`` (kept if it exists; ``private`` only applies to a new repo), commit the adapter,
    return the repo's URL. ``api``: an ``HfApi`` (e.g. with another ``endpoint``); default ``HfApi()``."""
    from huggingface_hub import CommitOperationAdd, HfApi, constants

    repo = validate_repo_id(repo_id)
    secret = resolve_token(token)
    files = prepare_upload(info, repo, license_id=license_id)
    if constants.is_offline_mode():
        raise UserError("Publishing needs the network, but Hugging Face offline mode is on (HF_HUB_OFFLINE=1, "
                        "the app's default). Start the app or the command with HF_HUB_OFFLINE=0 to publish.")
    api = api if api is not None else HfApi()
    if base_hub_id(info.base_model) is None:
        log.warning("Adapter %s was trained on a local model folder; the card names it but cannot link it",
                    info.name)
    log.info("Publishing adapter %s to %s (%d files)", info.name, repo, len(files))
    failure = None
    try:
        url = api.create_repo(repo, token=secret, private=bool(private), exist_ok=True, repo_type="model")
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=content if isinstance(content, bytes)
                                         else str(content)) for path, content in files.items()]
        api.create_commit(repo, operations, commit_message=f"Upload adapter {info.name} ({info.task})",
                          token=secret, repo_type="model")
    except Exception as exc:  # HTTP errors, connection errors, a refused README: all reach the user scrubbed
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:  # raised outside the except block: no chained exception carries the token
        raise UserError(scrub(f"Could not publish {info.name!r} to {repo}: {failure}. Check that the token has "
                              "write access to that owner and that the Hub is reachable.", secret))
    log.info("Published adapter %s to %s", info.name, repo)
    return str(url)


def describe(files: dict[str, Any]) -> str:
    """One line per file: size and path in the repo."""
    def size(content) -> int:
        return len(content) if isinstance(content, bytes) else Path(content).stat().st_size

    return "\n".join(f"{size(content):>12,}  {path}" for path, content in files.items())


def main(argv: list[str] | None = None) -> int:
    from assistant.core.machine_settings import default_data_dir

    parser = argparse.ArgumentParser(prog="python -m finetune.publish", description=(
        "Publish a trained adapter to the Hugging Face Hub with a generated model card. The token is read from "
        "HF_TOKEN; the Hub must be reachable (HF_HUB_OFFLINE=0)."))
    parser.add_argument("adapter", metavar="ADAPTER_NAME", help="adapter name under DATA_DIR/adapters")
    parser.add_argument("--repo-id", help="owner/name on the Hub (required unless --dry-run)")
    parser.add_argument("--private", action="store_true", help="create the repo as private (a new repo only)")
    parser.add_argument("--license", dest="license_id", help="license id for the card (default: the base's)")
    parser.add_argument("--data-dir", help=f"where adapters/ lives (default: {default_data_dir()})")
    parser.add_argument("--dry-run", action="store_true", help="print the files and the card; upload nothing")
    args = parser.parse_args(argv)

    def upload() -> str:
        info = AdapterStore(Path(args.data_dir or default_data_dir()) / "adapters").get(args.adapter)
        if args.dry_run:
            repo = validate_repo_id(args.repo_id) if args.repo_id else None
            files = prepare_upload(info, repo, license_id=args.license_id)
            return (f"Would upload {len(files)} files to {repo or 'OWNER/NAME'}:\n{describe(files)}\n\n"
                    + files["README.md"].decode("utf-8"))
        if not args.repo_id:
            raise InputError("--repo-id is required to publish (e.g. --repo-id alice/sentiment-lora).")
        return publish(info, args.repo_id, None, private=args.private, license_id=args.license_id)

    return run_command(upload)


if __name__ == "__main__":
    sys.exit(main())

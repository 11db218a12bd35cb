"""Shared fixtures: tiny models built in code (fast tier) and the real embedded models (``real``).

Tiers (design principle 6): plain unit tests need no model; tests taking ``tiny_llm_dir`` /
``tiny_bert_dir`` run the real code paths on 2-layer random models; tests marked ``real``
load the embedded SmolLM2 / MiniLM weights; tests marked ``browser`` drive headless Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded in tests
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def tmp_uploads(tmp_path, monkeypatch) -> Path:
    """``tmp_path`` as Gradio's upload folder: files a test writes there count as a caller's uploads
    (handlers read nothing else, see ``assistant.ui.uploads``)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_llm_dir):
    """The tiny Llama loaded in fp32 (shared; do not modify it)."""
    from assistant.core.loading import load_causal_lm

    return load_causal_lm(str(tiny_llm_dir), quant="fp32")


@pytest.fixture(scope="session")
def real_chat_loaded():
    """The embedded SmolLM2-135M-Instruct in 4-bit NF4, as the app loads it."""
    from assistant.core.loading import load_causal_lm

    return load_causal_lm("smollm2-135m-instruct", quant="nf4")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a module's browser tests."""
    from tests.chromium import chromium

    with chromium() as launched:
        yield launched

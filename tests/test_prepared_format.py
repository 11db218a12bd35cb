"""The served copy in llama.cpp's fastest format (``assistant.core.gguf.prepared``): made once where it pays,
the shipped file kept as the source of truth, and the copy's next-token choices close to the shipped file's."""

import numpy as np
import pytest

from assistant.core.gguf import prepared
from tests.tiny_models import build_tiny_gguf


def test_a_file_that_does_not_pay_is_served_as_shipped_and_remembered(tmp_path):
    gguf, _ = build_tiny_gguf(tmp_path / "model")
    cache = tmp_path / "cache"
    assert prepared.prepared_gguf(gguf, cache, "auto") == gguf  # F32 is not one of PREPARE_FROM
    marker = prepared._as_shipped_marker(gguf, cache)
    assert marker.is_file()
    assert prepared.prepared_gguf(gguf, cache, "auto") == gguf  # answered from the marker, no child


def test_shipped_mode_never_prepares(tmp_path):
    gguf, _ = build_tiny_gguf(tmp_path / "model")
    assert prepared.prepared_gguf(gguf, tmp_path / "cache", "shipped") == gguf
    assert not (tmp_path / "cache").exists()


def test_a_failed_preparation_serves_the_shipped_file(tmp_path, capsys):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    assert prepared.prepared_gguf(broken, tmp_path / "cache", "auto") == broken
    assert "as shipped (preparing a faster copy failed" in capsys.readouterr().err
    assert list((tmp_path / "cache").rglob("*.gguf")) == []


def test_serve_format_is_a_checked_setting():
    from assistant.core.errors import InputError
    from assistant.settings import AppSettings

    assert AppSettings.from_cli_and_env(["--serve-format", "shipped"], env={}).serve_format == "shipped"
    with pytest.raises(InputError, match="--serve-format 'fast' is not one of auto, shipped"):
        AppSettings.from_cli_and_env(["--serve-format", "fast"], env={})


@pytest.mark.real
def test_the_default_model_is_served_from_a_q4_0_copy_that_agrees_with_the_shipped_file(tmp_path):
    from llama_cpp import Llama

    from assistant.core.loading import load_served_model
    from assistant.core.model_sources import default_cache_dir, embedded_path

    shipped = embedded_path("qwen2.5-coder-0.5b-instruct")
    loaded = load_served_model("qwen2.5-coder-0.5b-instruct")
    if not prepared.llama_cpp_repacks():
        pytest.skip("this llama.cpp build does not repack Q4_0: the shipped file is served")
    assert loaded.location == str(shipped) and loaded.precision.weights == "Q4_0" and loaded.precision.prepared
    loaded.engine.close()
    text = "微调是在预训练模型的基础上，用特定任务的数据继续训练，使模型适应新的任务。" * 3
    choices = []
    for path in (shipped, prepared.prepared_path(shipped, default_cache_dir())):
        llm = Llama(str(path), n_ctx=256, logits_all=True, verbose=False)
        tokens = llm.tokenize(text.encode(), add_bos=True)[:96]
        llm.eval(tokens)
        choices.append(np.array(llm.scores[: len(tokens)]).argmax(axis=1))
        llm.close()
    # Measured 88.5% top-1 agreement on the seed document (bench/prepared_format.py); a broken copy is near 0.
    assert (choices[0] == choices[1]).mean() >= 0.75

"""AppSettings: flags beat environment variables beat defaults; bad values fail with the fix."""

import pytest

from assistant.core.errors import InputError
from assistant.settings import AppSettings


def test_defaults_are_the_multilingual_embedded_model_in_nf4_on_port_7860():
    settings = AppSettings.from_cli_and_env([], env={})
    assert (settings.model, settings.quant, settings.port, settings.host) == (
        "qwen2.5-coder-0.5b-instruct", "nf4", 7860, "127.0.0.1")
    assert settings.trust_remote_code is False


def test_environment_fills_what_flags_leave_out_and_flags_win():
    env = {"ASSISTANT_MODEL": "/models/a", "ASSISTANT_QUANT": "int8", "GRADIO_SERVER_PORT": "9000",
           "GRADIO_SERVER_NAME": "0.0.0.0", "ASSISTANT_TRUST_REMOTE_CODE": "true"}
    settings = AppSettings.from_cli_and_env(["--quant", "none"], env=env)
    assert settings.model == "/models/a"
    assert settings.quant == "none"
    assert settings.port == 9000 and settings.host == "0.0.0.0"
    assert settings.trust_remote_code is True


@pytest.mark.parametrize("kwargs, fragment", [
    ({"quant": "q3"}, "--quant"),
    ({"port": "abc"}, "--port must be a number"),
    ({"port": 70000}, "between 1 and 65535"),
    ({"device": "tpu"}, "--device"),
    ({"model": "  "}, "--model is empty"),
    ({"max_loaded_models": 0}, "--max-loaded-models"),
    ({"max_model_memory_mb": -1}, "--max-model-memory-mb"),
    ({"models_dir": __file__}, "--models-dir"),
])
def test_invalid_values_name_the_flag(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        AppSettings(**kwargs)


def test_unknown_quant_flag_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        AppSettings.from_cli_and_env(["--quant", "fp8"], env={})
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err

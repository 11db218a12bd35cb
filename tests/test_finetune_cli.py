"""``python -m finetune``: configs parse, flags override, bad input exits 2 with one line."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.__main__ import build_parser, load_config

CONFIGS = sorted(Path("finetune/configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_is_valid(path):
    config = load_config(build_parser().parse_args(["--config", str(path)]))
    assert Path(config.data).is_file()


def test_flags_override_the_config():
    config = load_config(build_parser().parse_args(["--config", "finetune/configs/classification.yaml",
                                                    "--max-steps", "7", "--lora-r", "4"]))
    assert (config.max_steps, config.lora_r, config.task) == (7, 4, "classification")
    assert "--max-steps 7" in config.cli_command() and "--lora-r 4" in config.cli_command()


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "finetune", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args, fragment", [
    (["--task", "poetry", "--data", "x.csv"], "--task 'poetry'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--lora-r", "zero"], "--lora-r must be a int"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "bad name!"], "bad name!"),
    (["--data", "missing.csv"], "missing.csv"),
    (["--task", "translation", "--base", "minilm-l6-v2", "--data", "finetune/samples/translation_en_de.jsonl"],
     "A classifier head fits classification and NER, not 'translation'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "../escape_rel"], "'../escape_rel'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "/tmp/absolute"], "'/tmp/absolute'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "../../../../../x"], "Adapter name"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", ".hidden"], "'.hidden'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "outdir/My Adapter"], "'outdir/My Adapter'"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output", "n" * 300], "Adapter name"),
    (["--data", "finetune/samples/sentiment_en.csv", "--output-dir", "finetune/samples/sentiment_en.csv"],
     "is a file"),
    (["--resume", "../../somewhere"], "not a path"),
])
def test_bad_input_exits_2_with_one_line(args, fragment, tmp_path):
    """Each is refused before any model loads or any run folder is made."""
    result = run_cli(*args, "--data-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "adapters").exists()


def test_help_lists_embedded_bases():
    result = run_cli("--help")
    assert result.returncode == 0 and "smollm2-135m-instruct" in result.stdout and "minilm-l6-v2" in result.stdout


def test_cli_run_writes_the_adapter_folder(tmp_path, tiny_llm_dir):
    out = tmp_path / "chosen" / "cli-run"
    result = run_cli("--task", "classification", "--data", str(Path("finetune/samples/sentiment_en.csv").resolve()),
                     "--base", str(tiny_llm_dir), "--output", "cli-run", "--output-dir", str(out.parent),
                     "--max-steps", "2", "--eval-limit", "4",
                     "--data-dir", str(tmp_path / "data"), cwd=Path.cwd())
    assert result.returncode == 0, result.stderr
    assert {"adapter_config.json", "adapter_model.safetensors", "metadata.json", "metrics.jsonl"} <= {
        p.name for p in out.iterdir()}
    runs = [p.name for p in (tmp_path / "data" / "runs").iterdir()]  # named by finetune.run_ids, as the tab's jobs
    assert len(runs) == 1 and re.fullmatch(r"classification-\d{8}-\d{6}-[0-9a-f]{4}", runs[0]), runs


def test_runs_under_accelerate_launch(tmp_path, tiny_llm_dir):
    accelerate = Path(sys.executable).parent / "accelerate"
    result = subprocess.run(
        [str(accelerate), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "finetune", "--task", "classification", "--data",
         "finetune/samples/sentiment_en.csv", "--base", str(tiny_llm_dir), "--max-steps", "2", "--eval-limit", "4",
         "--data-dir", str(tmp_path), "--output", "via-accelerate"],
        capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "adapters" / "via-accelerate" / "adapter_model.safetensors").is_file()

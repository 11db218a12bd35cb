"""The adapter store when things go wrong mid-publish: an exception or Ctrl-C inside staging, a process
killed with SIGKILL, hand-made and dead work folders, and work folders of live processes (kept).

    pytest tests/test_adapter_crashes.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from finetune.adapters import AdapterStore
from tests.adapter_files import REPO_ROOT, hidden_entries, publish, write_adapter


@pytest.fixture
def store(tmp_path) -> AdapterStore:
    return AdapterStore(tmp_path / "adapters")


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has exited (and been reaped), like a killed training run."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)



@pytest.mark.parametrize("interruption", [RuntimeError("training diverged"), KeyboardInterrupt()])
def test_failure_inside_staging_leaves_no_trace(store, interruption):
    kept = publish(store, "kept")
    staging = store.staging("kept")
    with pytest.raises(type(interruption)):
        with staging as folder:
            write_adapter(folder)
            raise interruption
    assert staging.info is None and not folder.exists()
    assert store.list() == [kept] and hidden_entries(store.root) == []


def test_handmade_and_dead_work_folders_are_ignored_then_cleaned(tmp_path, dead_pid):
    root = tmp_path / "adapters"
    publish(AdapterStore(root), "good")
    leftovers = [root / ".staging-xyz", root / f".staging-{dead_pid}-0badc0de-good", root / ".trash-abc",
                 root / f".trash-{dead_pid}-0badc0de-old"]
    for folder in leftovers:
        folder.mkdir()
        write_adapter(folder)  # a complete adapter still must not appear: only publishing shows it
    (root / ".staging-stray-file").write_text("half", encoding="utf-8")
    assert [info.name for info in AdapterStore(root).list()] == ["good"]
    assert hidden_entries(root) == []


def test_killed_process_leaves_a_hidden_folder_that_the_next_start_removes(tmp_path):
    root = tmp_path / "adapters"
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom finetune.adapters import AdapterStore\n"
        "store = AdapterStore(Path(sys.argv[1]))\n"
        "with store.staging('killed') as folder:\n"
        "    (folder / 'adapter_config.json').write_text('{}')\n"
        "    (folder / 'adapter_model.safetensors').write_bytes(b'half-written')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(root)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert [p.name.startswith(".staging-") and p.name.endswith("-killed") for p in root.iterdir()] == [True]
    store = AdapterStore(root)
    assert store.list() == [] and list(root.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="liveness of another process is checked with os.kill on POSIX")
def test_work_folders_of_live_owners_are_kept(tmp_path):
    root = tmp_path / "adapters"
    other_process = root / f".staging-{os.getppid()}-0badc0de-training"  # e.g. a CLI run beside the app
    other_process.mkdir(parents=True)
    store = AdapterStore(root)
    staging = store.staging("mine")
    with staging as folder:
        write_adapter(folder)
        AdapterStore(root)  # a second store on the same root, e.g. another tab of the app, starting now
        assert folder.is_dir() and other_process.is_dir()
    assert staging.info.broken is None and other_process.is_dir()

"""Run a training job as a child process (``finetune.worker``) and follow it, for ``JobManager``.

The server never loads the training model: an out-of-memory, a native crash or a ``kill -9`` in
training ends the child, not the chat every user is in, and the child's memory goes back to the
system when it exits. Progress arrives as the child's event lines; Stop sends SIGTERM (the child
checkpoints and exits); a child that dies is reported with how it ended, and a run with a
checkpoint stays resumable.

    manager = JobManager(data_dir, runner=run_in_process)   # the app's default
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

from assistant.core.errors import UserError
from assistant.core.machine_settings import MachineSettings
from finetune.config import FinetuneConfig
from finetune.job_files import append_log
from finetune.recipe import RunSummary
from finetune.worker import EVENT_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[1]


class TrainingProcessEnded(UserError):
    """The training process died (signal, crash); ``resumable`` when the run has a checkpoint."""

    def __init__(self, message: str, resumable: bool):
        super().__init__(message)
        self.resumable = resumable


def _how_it_ended(returncode: int, stderr_tail: list[str]) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = " (the system may have run out of memory)" if name == "SIGKILL" else ""
        return f"The training process was ended by {name}{why}"
    last = next((line for line in reversed(stderr_tail) if line.strip()), "")
    return f"The training process exited with code {returncode}" + (f": {last.strip()[:300]}" if last else "")


def process_runner(machine: MachineSettings | None = None):
    """A ``JobManager`` runner whose training processes load models with ``machine`` (the server's)."""
    def runner(config, run_dir, resume, on_event, stop_event) -> RunSummary:
        return run_in_process(config, run_dir, resume, on_event, stop_event, machine)

    return runner


def run_in_process(config: FinetuneConfig, run_dir: Path, resume: bool, on_event, stop_event: threading.Event,
                   machine: MachineSettings | None = None) -> RunSummary:
    """``finetune.recipe.run``'s contract, in a child process: events, Stop, the summary or an error.
    The machine settings reach the child through its environment only (``machine``, else this process's)."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "worker-config.json"
    config_path.write_text(json.dumps(config.to_dict(), ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, **(machine.to_env() if machine else {}), "PYTHONUNBUFFERED": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    stderr_tail: deque[str] = deque(maxlen=40)
    command = [sys.executable, "-m", "finetune.worker", str(config_path)] + (["--resume"] if resume else [])
    with open(folder / "worker.stderr", "w", encoding="utf-8") as stderr_file:
        child = subprocess.Popen(command,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)

        def forward_stop():
            stop_event.wait()
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)  # the child checkpoints at the next step and exits

        def drain_stderr():
            for line in child.stderr:
                stderr_file.write(line)
                stderr_tail.append(line)

        on_event("process", {"pid": child.pid})
        threading.Thread(target=forward_stop, name="finetune-stop", daemon=True).start()
        drain = threading.Thread(target=drain_stderr, name="finetune-stderr", daemon=True)
        drain.start()
        result: dict = {}
        for line in child.stdout:
            if not line.startswith(EVENT_PREFIX):
                continue
            record = json.loads(line[len(EVENT_PREFIX):])
            if "event" in record:
                on_event(record["event"], record["payload"])
            else:
                result = record
        returncode = child.wait()
        drain.join(timeout=10)
    if "summary" in result:
        return RunSummary(**result["summary"])
    if result.get("user"):
        raise UserError(result["error"])
    if result.get("traceback"):
        append_log(folder, result["traceback"])
        raise UserError(result["error"])
    resumable = (folder / "checkpoint.pt").is_file()
    ended = _how_it_ended(returncode, list(stderr_tail))
    raise TrainingProcessEnded(ended + ("; Resume continues from its last checkpoint." if resumable
                                        else ", before its first checkpoint; start it again."), resumable)

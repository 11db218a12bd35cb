"""Run the recipe in this process the way the CLI does: a new run in a fresh run folder, or a resume of one,
on this machine's settings (``MachineSettings.from_env``). For tests that train without the job manager's child process.

    summary = run_new(config, on_event)                  # finetune.recipe.run(config, run_dir, machine, False, ...)
    again = run_resumed(config, summary.run_id)          # the same run folder, resume=True
"""

from __future__ import annotations

from assistant.core.machine_settings import MachineSettings
from finetune.recipe import RunSummary, run
from finetune.run_ids import new_run_id, run_folder


def run_new(config, on_event=None, stop_event=None) -> RunSummary:
    run_dir = run_folder(config.data_dir, new_run_id(config.task))
    return run(config, run_dir, MachineSettings.from_env(), False, on_event, stop_event)


def run_resumed(config, run_id: str, on_event=None, stop_event=None) -> RunSummary:
    return run(config, run_folder(config.data_dir, run_id), MachineSettings.from_env(), True, on_event, stop_event)

"""One training run in a process of its own, for the app's job manager (``finetune.process_runner``).

    python -m finetune.worker RUN_DIR/worker-config.json [--resume]

Runs ``finetune.recipe.run`` in RUN_DIR (the config file's folder; ``--resume`` continues from its checkpoint)
on the machine settings of its environment (``MachineSettings.from_env``, read here once: ``finetune.process_runner``
sets them from the server's), and writes one JSON line per event to stdout, each prefixed with
``EVENT_PREFIX`` (anything else a library prints there is not an event), then the run's summary or
its error. SIGTERM asks the run to stop at the next step with a checkpoint, as the tab's Stop does.
Exit codes: 0 finished or stopped, 2 a user error (bad data, a name taken...), 1 an internal error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import traceback
from dataclasses import asdict
from pathlib import Path

EVENT_PREFIX = "@@finetune "


def emit(record: dict) -> None:
    sys.stdout.write(EVENT_PREFIX + json.dumps(record, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.worker")
    parser.add_argument("config", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    from assistant.core.errors import UserError
    from assistant.core.machine_settings import MachineSettings
    from finetune.config import FinetuneConfig
    from finetune.failures import explain
    from finetune.recipe import run

    try:
        config = FinetuneConfig(**json.loads(args.config.read_text(encoding="utf-8")))
        summary = run(config, args.config.parent, MachineSettings.from_env(), args.resume,
                      lambda kind, payload: emit({"event": kind, "payload": payload}), stop)
    except UserError as exc:
        emit({"error": str(exc), "user": True})
        return 2
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which keeps serving
        known = explain(exc)
        emit({"error": str(known) if known else f"internal error: {type(exc).__name__}: {exc}", "user": False,
              "traceback": traceback.format_exc()})
        return 1
    emit({"summary": asdict(summary)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run under torchrun by tests/test_distributed.py: each rank reports what ``agree`` said to it.

    torchrun --nproc_per_node 2 -m tests.distributed_probe same|settings|unreadable
"""

import sys

from assistant.core.errors import InputError
from finetune.distributed import agree, finish, state

case = sys.argv[1]
rank = state().process_index
what = {"settings": {"seed": 42 + (rank if case == "settings" else 0)}, "data": "sha256:abc"}
error = "cannot read data.csv (permission denied)" if case == "unreadable" and rank == 1 else None
try:
    agree(what, error)
    print(f"rank {rank}: agreed", flush=True)
except InputError as exc:
    print(f"rank {rank}: InputError: {exc}", flush=True)
finish()

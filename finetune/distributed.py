"""Data parallel training with accelerate: the same ``python -m finetune`` under torchrun or accelerate launch.

    torchrun --standalone --nproc_per_node 2 -m finetune --task classification --data finetune/samples/sentiment_en.csv
    accelerate launch --config_file finetune/configs/accelerate/ddp_multi_gpu.yaml -m finetune --config ...  # GPUs

Each process loads the data and the model, trains on its share of every global batch (rank r
takes examples r, r + N, ... of a global batch of ``batch_size x N``, so ``--batch-size`` is per
process, as in HF Trainer), and accelerate's DDP averages the gradients: gloo on a CPU, NCCL on
CUDA. Rank 0 alone writes the run's log and checkpoints, evaluates and saves the adapter.
Before any training, every rank's settings and data fingerprint are compared: a rank that
differs, or cannot read the data file, stops all of them with one clear error and no adapter.
"""

from __future__ import annotations

import os

from assistant.core.errors import InputError


def world_size() -> int:
    """Processes in this job (torchrun's / accelerate's WORLD_SIZE; 1 when started plainly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_distributed() -> bool:
    return world_size() > 1


def state():
    """accelerate's process state (starts the process group: gloo on a CPU, NCCL on CUDA)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    return not is_distributed() or state().is_main_process


def agree(what: dict, error: str | None = None) -> None:
    """All ranks stop with the same InputError unless every rank saw the same ``what`` and no ``error``."""
    if not is_distributed():
        if error:
            raise InputError(error)
        return
    from accelerate.utils import gather_object

    seen = gather_object([{"rank": state().process_index, "what": what, "error": error}])
    failed = [s for s in seen if s["error"]]
    if failed:
        raise InputError(f"rank {failed[0]['rank']} of {len(seen)}: {failed[0]['error']} (no rank trains; "
                         "give every process the same readable file)")
    for other in seen[1:]:
        if other["what"] != seen[0]["what"]:
            differing = sorted(k for k in seen[0]["what"] if seen[0]["what"][k] != other["what"].get(k))
            raise InputError(f"rank {other['rank']} was started with different settings or data than rank 0 "
                             f"({', '.join(differing)}); start every process with the same command and file.")


def from_main(value):
    """rank 0's ``value`` on every rank (e.g. the run id, which has the start time in it)."""
    if not is_distributed():
        return value
    from accelerate.utils import broadcast_object_list

    state()  # the process group must exist first: before it, accelerate hands each rank its own value back
    return broadcast_object_list([value], from_process=0)[0]


def wait_for_everyone() -> None:
    if is_distributed():
        state().wait_for_everyone()


def finish() -> None:
    """Leave the process group cleanly (gloo's threads abort a process that exits while they run)."""
    if is_distributed():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

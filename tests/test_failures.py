"""Resource failures become messages with the fix; other errors are left alone."""

import errno

import torch

from finetune.failures import explain


def test_out_of_memory_says_what_to_lower():
    for exc in (MemoryError(), torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")):
        assert "Lower the batch size" in str(explain(exc))


def test_full_disk_says_what_to_free():
    message = str(explain(OSError(errno.ENOSPC, "No space left on device", "/data/runs/x/checkpoint.pt")))
    assert "disk is full" in message and "/data/runs/x/checkpoint.pt" in message


def test_other_errors_are_not_explained_away():
    assert explain(ValueError("bug")) is None
    assert explain(OSError(errno.EACCES, "Permission denied")) is None

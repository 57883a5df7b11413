"""Saved compiled models: a folder with `manifest.json` and the backend's
payload files (LLVM-dialect IR for jit, a shared library and header for aot,
a .vmfb for IREE). Every payload file is listed with its size and SHA-256, so
a missing, truncated or altered file is named on load, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .version import __version__
from .errors import ArtifactError
from .runtime.signature import Signature

FORMAT = "mlirc-artifact"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"


def tool_versions() -> dict[str, str]:
    versions = {"mlirc": __version__}
    for package in ("torch-mlir", "iree-base-compiler", "iree-base-runtime", "torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


# The tool whose version must match for each backend's payload to load.
_PAYLOAD_TOOL = {"jit": "torch-mlir", "aot": None}


def _payload_tool(backend: str) -> str | None:
    return "iree-base-runtime" if backend.startswith("iree-") else _PAYLOAD_TOOL.get(backend)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: str | Path, backend: str, signature: Signature, files: dict[str, bytes],
          source_ir_hash: str, options: dict | None = None,
          stages: list | None = None) -> Path:
    """Writes an artifact folder atomically: built beside `path`, then renamed.
    `stages` (StageResults) are kept as stages/NN-name.mlir (the cache does)."""
    files = dict(files)
    stage_names = []
    for index, stage in enumerate(stages or []):
        files[f"stages/{index:02d}-{stage.name}.mlir"] = stage.text.encode()
        stage_names.append(stage.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "backend": backend,
        "signature": json.loads(signature.to_json()), "versions": tool_versions(),
        "source_ir_sha256": source_ir_hash, "options": options or {},
        "cpu": _cpu_of(backend, options or {}),
        "stages": stage_names,
        "files": {name: {"bytes": len(data), "sha256": sha256(data)}
                  for name, data in files.items()},
    }
    manifest["manifest_sha256"] = manifest_digest(manifest)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_manifest(path: Path) -> dict:
    if not path.exists():
        raise ArtifactError(f"no artifact at {path}")
    if not path.is_dir():
        raise ArtifactError(f"{path} is not an artifact folder (expected {MANIFEST} inside)")
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ArtifactError(f"{path}: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise ArtifactError(f"{manifest_path} is not valid JSON ({reason}): "
                            "truncated or corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{manifest_path} is not an mlirc manifest")
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtifactError(f"{manifest_path}: format_version {version!r} is not a number "
                            "(edited or corrupt)")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by a newer mlirc (format "
                            f"{manifest['format_version']}, this reads {FORMAT_VERSION})")
    if version < FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by an older mlirc (format "
                            f"{manifest.get('format_version')}) without a manifest hash; "
                            "save it again")
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise ArtifactError(f"{manifest_path} does not match its own manifest_sha256 "
                            "(edited or corrupt)")
    for key in ("backend", "signature", "files", "versions"):
        if key not in manifest:
            raise ArtifactError(f"{manifest_path} has no '{key}' entry")
    return manifest


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest without its own digest. The manifest holds
    each payload file's hash, so this one covers manifest and payload."""
    rest = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return sha256(json.dumps(rest, sort_keys=True).encode())


def read_files(path: Path, manifest: dict) -> dict[str, bytes]:
    """The payload files, each checked against its size and hash."""
    files = {}
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.exists():
            raise ArtifactError(f"{path}: payload file {name} is missing")
        data = file.read_bytes()
        if len(data) != expected["bytes"]:
            raise ArtifactError(f"{path}: {name} is truncated or padded "
                                f"({len(data)} bytes, manifest says {expected['bytes']})")
        if sha256(data) != expected["sha256"]:
            raise ArtifactError(f"{path}: {name} does not match its SHA-256 in the manifest "
                                "(corrupt or modified)")
        files[name] = data
    return files


def _cpu_of(backend: str, options: dict) -> dict | None:
    """The CPU a native payload's code was generated for: its machine and the
    lowest level that runs it (an aot library's target, else the host's);
    IREE's modules carry their own target."""
    if backend.startswith("iree-"):
        return None
    from .kernels.host import host, target_level
    target = options.get("target_cpu") if backend == "aot" else None
    level = target_level(target) if target else host().level
    return {"machine": host().machine, "level": level}


def check_cpu(path: Path, manifest: dict) -> None:
    """A native payload runs only where its instructions exist: refused on a
    machine of another kind or of a lower level (it would die of SIGILL)."""
    from .kernels.buildspec import LEVELS
    from .kernels.host import host
    saved = manifest.get("cpu")
    if not saved:
        return
    here = host()
    level = saved.get("level") if isinstance(saved, dict) else None
    if not isinstance(saved, dict) or saved.get("machine") != here.machine or \
            level not in LEVELS or LEVELS.index(level) > LEVELS.index(here.level):
        raise ArtifactError(f"{path} was built for {saved} CPUs; this one is "
                            f"{here.machine} with {here.level}: recompile it here")


def check_versions(path: Path, manifest: dict) -> None:
    tool = _payload_tool(manifest["backend"])
    if tool is None:
        return
    saved, here = manifest["versions"].get(tool), tool_versions().get(tool)
    if saved != here:
        raise ArtifactError(f"{path} was built with {tool} {saved}, but {here} is installed: "
                            "recompile it with this version")

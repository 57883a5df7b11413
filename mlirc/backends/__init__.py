"""Backends turn a pipeline's final IR into something that runs.

Each backend loads the final module of its stages (stages.backend_stages)
into an `Executable`: a callable from a list of numpy arrays
(the flat inputs) to a list of numpy arrays (the flat outputs).
"""

from __future__ import annotations

from typing import Protocol

from ..errors import InputError


class Executable(Protocol):
    def __call__(self, inputs: list) -> list: ...


class Backend(Protocol):
    name: str

    def load(self, module, signature, options: dict) -> Executable: ...


def _backends() -> dict:
    from .aot import AotBackend
    from .iree import TARGETS, IreeBackend
    from .jit import JitBackend
    backends = {"jit": JitBackend(), "aot": AotBackend()}
    backends.update({name: IreeBackend(target) for name, target in TARGETS.items()})
    return backends


def backend_names() -> list[str]:
    return list(_backends())


def get_backend(name: str) -> Backend:
    backends = _backends()
    if name not in backends:
        raise InputError(f"unknown backend '{name}'; backends: {', '.join(backends)}")
    return backends[name]

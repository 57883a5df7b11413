"""mlirc as an ONNX backend (onnx.backend.base.Backend), so the standard
`onnx.backend.test.BackendTest` runner can drive it:

    import onnx.backend.test, mlirc.onnx_backend
    tests = onnx.backend.test.BackendTest(mlirc.onnx_backend, __name__)

The module-level functions use the jit backend; `IreeCpuBackend` (and any
`for_backend(name)`) run the same models through another mlirc backend.

Value specialisation: when a model only compiles with some small integer
inputs known (ONNX passes axes, shapes and pads as inputs; torch-mlir needs
them constant), or compiles only to run-time shapes, `prepare` defers
compilation to the first `run`, bakes those inputs' values in, and guards on
them: new values compile a new variant.
"""

from __future__ import annotations

import re

import numpy as np
from onnx.backend.base import Backend, BackendRep

from .compiler import compile as mlirc_compile
from .errors import MlircError
from .frontends import onnx as onnx_frontend
from .runtime.inputs import flatten_arguments


def _run_compiled(compiled, inputs: list) -> tuple:
    # ONNX feeds often give [1] for a declared scalar (and similar): accept
    # any array whose element count matches the declared shape.
    inputs = [np.reshape(array, spec.shape) if np.size(array) == np.prod(spec.shape)
              else array for array, spec in zip(inputs, compiled.signature.inputs)]
    arrays, _ = flatten_arguments(compiled.signature, tuple(inputs), flat=True)
    return tuple(compiled.run_flat(arrays))


class MlircBackendRep(BackendRep):
    def __init__(self, compiled=None, model=None, specialize=(), compile_options=None):
        self.compiled = compiled
        self.model = model
        self.specialize = list(specialize)   # input names baked in at first run
        self.compile_options = compile_options or {}
        self.variants: dict[bytes, object] = {}

    def run(self, inputs, **kwargs):
        names = [i.name for i in self.model.graph.input] if self.model is not None else \
            self.compiled.signature.input_names
        if isinstance(inputs, dict):
            inputs = [inputs[name] for name in names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if self.compiled is not None:
            return _run_compiled(self.compiled, list(inputs))
        by_name = dict(zip([n for n in names if n not in self._initializers()], inputs))
        values = {n: np.asarray(by_name[n]) for n in self.specialize}
        guard = b"".join(n.encode() + v.dtype.str.encode() + v.tobytes()
                         for n, v in sorted(values.items()))
        if guard not in self.variants:
            model = onnx_frontend.specialize_inputs(self.model, values)
            self.variants[guard] = mlirc_compile(model, **self.compile_options)
        compiled = self.variants[guard]
        rest = [by_name[n] for n in compiled.signature.input_names]
        return _run_compiled(compiled, rest)

    def _initializers(self) -> set[str]:
        return {i.name for i in self.model.graph.initializer}


_DYNAMIC_TENSOR = re.compile(r"tensor<(?:\d+x)*\?")


def _has_dynamic_shapes(compiled) -> bool:
    """Whether the model's linalg IR has tensors of run-time shape."""
    return bool(_DYNAMIC_TENSOR.search(compiled.ir.get("linalg", "")))


class MlircBackend(Backend):
    mlirc_backend = "jit"

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> MlircBackendRep:
        super().prepare(model, device, **kwargs)  # runs the ONNX checker
        options = {k: kwargs[k] for k in ("input_shapes", "cache", "opt_level") if k in kwargs}
        options["backend"] = cls.mlirc_backend
        specialize = onnx_frontend.specializable_inputs(model)
        try:
            compiled = mlirc_compile(model, **options)
        except MlircError:
            if not specialize:
                raise
            return MlircBackendRep(model=model, specialize=specialize, compile_options=options)
        if specialize and _has_dynamic_shapes(compiled):
            # Shapes computed from input values at run time: static shapes
            # from the values are faster, and the native pipeline's handling
            # of dynamic shapes is the weaker path (AffineGrid computes wrong
            # results with them).
            return MlircBackendRep(model=model, specialize=specialize, compile_options=options)
        return MlircBackendRep(compiled)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        raise NotImplementedError("mlirc compiles whole models; use prepare/run_model")

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU") or (
            cls.mlirc_backend in ("iree-cuda",) and device.upper().startswith("CUDA"))


def for_backend(name: str) -> type[MlircBackend]:
    """An ONNX Backend class compiling through mlirc backend `name`."""
    return type(f"Mlirc_{name.replace('-', '_')}_Backend", (MlircBackend,), {"mlirc_backend": name})


IreeCpuBackend = for_backend("iree-cpu")

prepare = MlircBackend.prepare
run_model = MlircBackend.run_model
run_node = MlircBackend.run_node
supports_device = MlircBackend.supports_device

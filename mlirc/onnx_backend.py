"""mlirc as an ONNX backend (onnx.backend.base.Backend), so the standard
`onnx.backend.test.BackendTest` runner can drive it:

    import onnx.backend.test, mlirc.onnx_backend
    tests = onnx.backend.test.BackendTest(mlirc.onnx_backend, __name__)

The module-level functions use the jit backend; `IreeCpuBackend` (and any
`for_backend(name)`) run the same models through another mlirc backend.
"""

from __future__ import annotations

import numpy as np
from onnx.backend.base import Backend, BackendRep

from .compiler import compile as mlirc_compile
from .runtime.inputs import flatten_arguments


class MlircBackendRep(BackendRep):
    def __init__(self, compiled):
        self.compiled = compiled

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            names = self.compiled.signature.input_names
            inputs = [inputs[name] for name in names]
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        # ONNX feeds often give [1] for a declared scalar (and similar): accept
        # any array whose element count matches the declared shape.
        inputs = [np.reshape(array, spec.shape) if np.size(array) == np.prod(spec.shape)
                  else array for array, spec in zip(inputs, self.compiled.signature.inputs)]
        arrays, _ = flatten_arguments(self.compiled.signature, tuple(inputs), flat=True)
        return tuple(self.compiled.run_flat(arrays))


class MlircBackend(Backend):
    mlirc_backend = "jit"

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> MlircBackendRep:
        super().prepare(model, device, **kwargs)  # runs the ONNX checker
        options = {k: kwargs[k] for k in ("input_shapes", "cache", "opt_level") if k in kwargs}
        return MlircBackendRep(mlirc_compile(model, backend=cls.mlirc_backend, **options))

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

"""IREE backends: the `linalg` stage compiled by iree-compile to a .vmfb and run
by iree.runtime. One class serves every target; only flags and driver differ.

Compiling needs no device: the runtime context is created at the first call,
so a CUDA module can be built on a machine without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import BackendError
from ..runtime.signature import Signature


@dataclass(frozen=True)
class IreeTarget:
    backend: str                # mlirc backend name
    hal_target: str             # --iree-hal-target-backends
    driver: str                 # iree.runtime driver
    flags: tuple[str, ...]      # target flags


TARGETS = {t.backend: t for t in [
    IreeTarget("iree-cpu", "llvm-cpu", "local-task", ("--iree-llvmcpu-target-cpu=host",)),
    IreeTarget("iree-cuda", "cuda", "cuda", ("--iree-cuda-target=sm_80",)),
    IreeTarget("iree-rocm", "rocm", "hip", ("--iree-rocm-target=gfx942",)),
    IreeTarget("iree-vulkan", "vulkan-spirv", "vulkan", ("--iree-vulkan-target=ampere",)),
]}


def cpu_flag() -> str:
    """iree-compile's CPU: this one, or the x86-64 level MLIRC_TARGET_ISA
    restricts mlirc to (so that the AVX2 path measures IREE's AVX2 code too)."""
    from ..kernels.buildspec import MARCH
    from ..kernels.host import host
    info = host()
    if info.level != info.machine_level and info.machine in ("x86_64", "AMD64"):
        return f"--iree-llvmcpu-target-cpu={MARCH[info.level]}"
    return "--iree-llvmcpu-target-cpu=host"


def device_available(driver: str) -> tuple[bool, str]:
    """Whether iree.runtime can open a device for `driver`, and why not."""
    import iree.runtime as runtime
    try:
        devices = runtime.get_driver(driver).query_available_devices()
    except Exception as error:
        return False, f"driver '{driver}' cannot start: {str(error).strip().splitlines()[0]}"
    if not devices:
        return False, f"driver '{driver}' finds no device"
    return True, ""


class IreeExecutable:
    def __init__(self, vmfb: bytes, signature: Signature, target: IreeTarget,
                 entry: str = "main"):
        self.vmfb = vmfb
        self.signature = signature
        self.target = target
        self.entry = entry
        self._function = None

    def _load(self):
        import iree.runtime as runtime
        available, why = device_available(self.target.driver)
        if not available:
            raise BackendError(f"cannot run {self.target.backend} here: {why}")
        config = runtime.Config(self.target.driver)
        context = runtime.SystemContext(config=config)
        vm_module = runtime.VmModule.copy_buffer(context.instance, self.vmfb)
        context.add_vm_module(vm_module)
        self._context = context
        return context.modules[vm_module.name][self.entry]  # named after the MLIR module

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._function is None:
            self._function = self._load()
        results = self._function(*inputs)
        if not isinstance(results, (tuple, list)):
            results = [results]
        outputs = []
        for result, spec in zip(results, self.signature.outputs):
            array = result.to_host() if hasattr(result, "to_host") else np.asarray(result)
            shape = array.shape if spec.is_dynamic else spec.shape
            outputs.append(np.asarray(array, dtype=spec.numpy_dtype).reshape(shape))
        return outputs

    # Artifact support: the payload is the .vmfb.
    def payload(self) -> dict[str, bytes]:
        return {"module.vmfb": self.vmfb}


class IreeBackend:
    def __init__(self, target: IreeTarget):
        self.target = target
        self.name = target.backend

    def compile_flags(self, options: dict, signature: Signature) -> list[str]:
        flags = list(self.target.flags)
        if self.target.hal_target == "llvm-cpu":
            flags = [cpu_flag() if f.startswith("--iree-llvmcpu-target-cpu=") else f
                     for f in flags]
        if any(s.dtype == "f64" for s in signature.inputs + signature.outputs):
            # IREE demotes f64 to f32 by default, which would change the
            # function's signature; keep f64 where the model's interface has it.
            flags += ["--iree-input-demote-f64-to-f32=false", "--iree-vm-target-extension-f64"]
        return flags + list(options.get("iree_flags", ()))

    def fingerprint(self, options: dict, signature: Signature) -> str:
        """What, beyond the IR, decides the compiled module (for the cache key)."""
        return " ".join([self.target.hal_target, *self.compile_flags(options, signature)])

    def load(self, module, signature, options: dict) -> IreeExecutable:
        import iree.compiler as compiler
        from .. import ir
        text = inline_bf16_resources(ir.module_text(module, debug_info=True))
        try:
            vmfb = compiler.compile_str(text, target_backends=[self.target.hal_target],
                                        extra_args=self.compile_flags(options, signature))
        except Exception as error:
            lines = [line.split("error:", 1)[1] for line in str(error).splitlines()
                     if "error:" in line]
            detail = lines[0].strip() if lines else str(error).strip().splitlines()[0]
            raise BackendError(f"iree-compile ({self.target.hal_target}) failed: {detail[:300]}") \
                from None
        return IreeExecutable(vmfb, signature, self.target)

    def from_payload(self, files: dict[str, bytes], signature, folder) -> IreeExecutable:
        return IreeExecutable(files["module.vmfb"], signature, self.target)


_BF16_RESOURCE = re.compile(r"dense_resource<([^>]+)> : tensor<([0-9x]*)bf16>")


def inline_bf16_resources(text: str) -> str:
    """bf16 weights as `dense<"0x...">` literals instead of `dense_resource`
    blobs: iree-compile 3.13 rejects bf16 resource constants ("'arith.constant'
    op failed to verify that all of {value, result} have same type") and
    takes the same bytes inline. The blob's first 4 bytes are its alignment."""
    if not _BF16_RESOURCE.search(text):
        return text
    blobs = dict(re.findall(r'^\s*([^\s:]+): "0x([0-9A-Fa-f]*)"', text, flags=re.MULTILINE))

    def inline(match: re.Match) -> str:
        data = blobs.get(match.group(1))
        if data is None or len(data) < 8:
            return match.group(0)
        return f'dense<"0x{data[8:]}"> : tensor<{match.group(2)}bf16>'
    return _BF16_RESOURCE.sub(inline, text)

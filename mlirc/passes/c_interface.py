"""Marks public functions with `llvm.emit_c_interface`, so that lowering to
LLVM also emits `_mlir_ciface_<name>` wrappers taking memref descriptors by
pointer: the entry point the JIT calls and the AOT header declares."""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass


@register_pass
@dataclass(frozen=True)
class EmitCInterface(PythonPass):
    name = "mlirc-emit-c-interface"
    description = "Add llvm.emit_c_interface to public func.func ops"

    def run(self, module_op) -> None:
        with module_op.context:
            for op in module_op.regions[0].blocks[0].operations:
                if op.operation.name != "func.func":
                    continue
                attributes = op.operation.attributes
                visibility = attributes["sym_visibility"] if "sym_visibility" in attributes else None
                if visibility is None or ir.StringAttr(visibility).value == "public":
                    attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()

"""Per-op profiling: timer calls around each top-level op of the entry
function, on memrefs after BLAS offload (where each op is one loop nest or
one BLAS call). The runtime side is runtime/profile_runtime.c; labels
(op, result type, source) go into the module attribute `mlirc.profile_ops`
so the report can name what each timer measured."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import ir
from ..analysis.support import source_of
from .base import PythonPass, register_pass

LABELS_ATTR = "mlirc.profile_ops"
BEGIN, END = "mlirc_profile_begin", "mlirc_profile_end"

# Ops that do no work worth a timer: allocation, views, constants.
_UNTIMED = ("memref.alloc", "memref.alloca", "memref.dealloc", "memref.get_global",
            "memref.cast", "memref.subview", "memref.expand_shape", "memref.collapse_shape",
            "memref.reinterpret_cast", "memref.transpose", "memref.extract_strided_metadata",
            "arith.constant", "func.return", "bufferization.", "memref.assume_alignment")


@register_pass
@dataclass(frozen=True)
class ProfileOps(PythonPass):
    name = "mlirc-profile-ops"
    description = "Wrap each top-level op of the entry function in profile timer calls"
    entry: str = "main"

    def run(self, module_op) -> None:
        body = module_op.regions[0].blocks[0]
        functions = {ir.StringAttr(op.attributes["sym_name"]).value: op
                     for op in (o.operation for o in body.operations) if op.name == "func.func"}
        if self.entry not in functions:
            raise ValueError(f"no function @{self.entry} to profile")
        arith, func = ir.dialects.arith, ir.dialects.func
        labels = []
        with module_op.context, ir.Location.unknown():
            i64 = ir.IntegerType.get_signless(64)
            with ir.InsertionPoint.at_block_begin(body):
                for name in (BEGIN, END):
                    if name not in functions:
                        declaration = func.FuncOp(name, ir.FunctionType.get([i64], []))
                        declaration.attributes["sym_visibility"] = ir.StringAttr.get("private")
            block = functions[self.entry].regions[0].blocks[0]
            operations = [o.operation for o in block.operations]
            for op, following in zip(operations, operations[1:]):
                if op.name.startswith(_UNTIMED):
                    continue
                timer = len(labels)
                labels.append(_label(op))
                with ir.InsertionPoint(op):
                    func.CallOp([], ir.FlatSymbolRefAttr.get(BEGIN),
                                [arith.constant(i64, timer)])
                with ir.InsertionPoint(following):
                    func.CallOp([], ir.FlatSymbolRefAttr.get(END),
                                [arith.constant(i64, timer)])
            module_op.attributes[LABELS_ATTR] = ir.StringAttr.get(json.dumps(labels))


def _label(op) -> dict:
    """What a timer measures: the op (a call names its callee), the type it
    writes, and where in the model it came from."""
    kind = op.name
    if op.name == "func.call":
        kind = f"call {ir.FlatSymbolRefAttr(op.attributes['callee']).value}"
    elif op.name == "linalg.generic":
        iterators = str(op.attributes["iterator_types"])
        kind = "linalg.generic (reduction)" if "reduction" in iterators else \
            "linalg.generic (elementwise)"
    elif op.name in ("scf.for", "scf.forall"):
        # a vectorized op: a loop over rows (or parallel rows) around vector code
        inner = [o for o in ir.walk_ops(op) if o.name == "vector.transfer_write"]
        kind = "vector loop" if inner else op.name
        if inner:
            op = inner[0]
    buffers = [str(_source_buffer(v).type) for v in op.operands
               if str(v.type).startswith("memref<")]
    if kind.startswith(("call mlirc_conv2d", "call mlirc_gemm")):
        # (input, filter or B, output[, bias, residual or packing slot]):
        # the output is written
        buffers = buffers[:3]
    written = buffers[-1].split(",")[0].rstrip(">") + ">" if buffers else ""
    return {"op": kind, "type": written, "where": source_of(op.location)}


def _source_buffer(value):
    """The whole buffer behind a memref.cast (BLAS calls take casts) or the
    row views of a vectorized loop."""
    while ir.defining_op_name(value) in ("memref.cast", "memref.subview"):
        value = value.owner.operands[0]
    return value


def uses_timers(module) -> bool:
    """Whether a module calls the profile timers (so their runtime must be loaded)."""
    return any(op.name in ("func.func", "llvm.func")
               and BEGIN in ir.StringAttr(op.attributes["sym_name"]).value
               for op in (o.operation for o in module.body.operations))

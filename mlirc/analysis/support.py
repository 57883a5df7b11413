"""Which ops of a model cannot be lowered to linalg, with counts and source lines.

Runs torch-mlir's torch -> linalg conversion patterns (which convert what they
can and leave the rest) on a torch-backend module, then lists the torch ops
that are left.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from .. import ir
from ..errors import UnsupportedOpsError

_CONVERSIONS = [
    "func.func(convert-torch-to-tmtensor)",
    "func.func(convert-torch-to-linalg)",
    "func.func(convert-torch-to-scf)",
    "func.func(convert-torch-to-arith)",
    "func.func(convert-torch-to-tensor)",
]

# Torch ops that only carry values into other ops; they vanish with their users.
_HELPER_PREFIXES = ("torch.constant.", "torch.prim.ListConstruct",
                    "torch.prim.TupleConstruct", "torch_c.", "torch.vtensor.literal")


@dataclass
class UnsupportedOp:
    name: str
    count: int
    sources: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"  at {', '.join(self.sources[:3])}" if self.sources else ""
        more = f" (+{len(self.sources) - 3} more)" if len(self.sources) > 3 else ""
        return f"{self.name} x{self.count}{where}{more}"


def find_unsupported_ops(torch_backend_text: str) -> list[UnsupportedOp]:
    """Ops left after the torch -> linalg conversions, on torch-backend IR."""
    context = ir.new_context()
    with ir.capture_diagnostics(context):
        module = ir.parse_module(torch_backend_text, context)
        with context:
            pass_manager = ir.PassManager.parse(f"builtin.module({','.join(_CONVERSIONS)})")
            try:
                pass_manager.run(module.operation)
            except ir.MLIRError:
                pass  # partial conversion: what is left is what we report
    return _collect(module, lambda name: name.startswith("torch.")
                    and not name.startswith(_HELPER_PREFIXES))


def find_unknown_operators(torch_text: str) -> list[UnsupportedOp]:
    """`torch.operator` ops: aten ops that torch-mlir does not know at all."""
    module = ir.parse_module(torch_text)
    return _collect(module, lambda name: name == "torch.operator")


def _collect(module, selected) -> list[UnsupportedOp]:
    counts: dict[str, int] = defaultdict(int)
    sources: dict[str, list[str]] = defaultdict(list)
    for op in ir.walk_ops(module.operation):
        if not selected(op.name):
            continue
        name = op.name
        if name == "torch.operator":
            name = ir.StringAttr(op.attributes["name"]).value
        counts[name] += 1
        where = ir.source_location(op.location) or _onnx_node_name(op.location)
        if where and where not in sources[name]:
            sources[name].append(where)
    return [UnsupportedOp(n, counts[n], sources[n]) for n in sorted(counts)]


def _onnx_node_name(location) -> str:
    """"node 'conv1'" for the name locations the ONNX importer gives its ops."""
    names = [n for n in re.findall(r'"([^"]*)"', str(location))
             if n and not n.startswith("graph:")]
    return f"node '{names[0]}'" if names else ""


def unsupported_ops_error(stage: str, input_text: str) -> UnsupportedOpsError | None:
    """An error listing the ops that stop `stage` (torch-backend or linalg)
    from lowering `input_text`, or None if it finds none to blame."""
    if stage == "torch-backend":
        ops = find_unknown_operators(input_text)
    elif stage == "linalg":
        ops = find_unsupported_ops(input_text)
    else:
        return None
    if not ops:
        return None
    listing = "; ".join(str(op) for op in ops)
    return UnsupportedOpsError(f"{len(ops)} op kind(s) cannot be lowered by stage '{stage}': "
                               f"{listing}", ops)


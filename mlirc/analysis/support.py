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
    return _convert_and_collect(torch_backend_text, _CONVERSIONS,
                                lambda name: name.startswith("torch.")
                                and not name.startswith(_HELPER_PREFIXES))


def find_unknown_operators(onnx_text: str) -> list[UnsupportedOp]:
    """`torch.operator` ops (onnx.* included) that the ONNX -> torch
    conversion leaves or fails on."""
    return _convert_and_collect(onnx_text, ["func.func(convert-torch-onnx-to-torch)"],
                                lambda name: name == "torch.operator")


def _convert_and_collect(text: str, conversions: list[str], selected) -> list[UnsupportedOp]:
    """Runs partial conversions and lists the selected ops left. When a
    conversion fails on an op it must convert, it rolls the whole function
    back, leaving every op: then only the ops it names in its diagnostics
    are to blame."""
    context = ir.new_context()
    with ir.capture_diagnostics(context) as diagnostics:
        try:
            module = ir.parse_module(text, context)
        except ir.MLIRError:  # IR that does not verify: the stage's own error stands
            return []
        with context:
            pass_manager = ir.PassManager.parse(f"builtin.module({','.join(conversions)})")
            try:
                pass_manager.run(module.operation)
            except ir.MLIRError as error:  # partial conversion: report what is left
                diagnostics += ir.diagnostics_of(error)
    ops = _collect(module, selected)
    culprits = _failed_to_legalize([d.message for d in diagnostics])
    blamed = [op for op in ops if op.name in culprits]
    return blamed or ops


_FAILED = re.compile(r"failed to legalize operation '([\w.]+)'")
_OPERATOR_NAME = re.compile(r'name = "([\w.]+)"')


def _failed_to_legalize(messages: list[str]) -> set[str]:
    """Op names from 'failed to legalize operation' diagnostics; a
    torch.operator goes by its own name (`onnx.Transpose`)."""
    names = set()
    for message in messages:
        match = _FAILED.search(message)
        if not match:
            continue
        operator = _OPERATOR_NAME.search(message)
        names.add(operator.group(1) if match.group(1) == "torch.operator" and operator
                  else match.group(1))
    return names


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
        where = source_of(op.location)
        if where and where not in sources[name]:
            sources[name].append(where)
    return [UnsupportedOp(n, counts[n], sources[n]) for n in sorted(counts)]


def source_of(location) -> str:
    """Where an op came from: 'file:line' for a source location, "node
    'conv1'" for the name locations the ONNX importer gives its ops, else ''."""
    return ir.source_location(location) or _onnx_node_name(location)


def _onnx_node_name(location) -> str:
    names = [n for n in re.findall(r'"([^"]*)"', str(location))
             if n and not n.startswith("graph:")]
    return f"node '{names[0]}'" if names else ""


def onnx_nodes(sources: list[str]) -> list[str]:
    """The ONNX node names among `sources` as source_of writes them."""
    return [s[len("node '"):-1] for s in sources if s.startswith("node '") and s.endswith("'")]


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
                               f"{listing}", ops, stage)


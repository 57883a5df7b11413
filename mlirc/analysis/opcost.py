"""What each linalg op of a model costs: its loops, work and compulsory data
movement, read off the `linalg` stage.

Every structured op is looked at in its generic form (upstream
`linalg-generalize-named-ops` on a copy of the module), so one reading
covers named and generic ops alike: the loop extents come from the indexing
maps and the operands' static shapes, the iterator types from the op, the
work from the body (one operation per arith/math op per iteration: a
multiply-accumulate counts two), and the bytes from the operands (each
input read once, the output written once and read too where the body uses
its old value). Contraction and convolution dimensions are inferred with the
MLIR bindings' own helpers (`linalg.infer_contraction_dimensions`,
`infer_convolution_dimensions`).

These are the lower bounds a roofline compares with: a tiled op moves at
least these bytes from memory and does exactly these operations. A
transpose of a weight is of kind "constant": the kernels read it as a view
or pack it once, so no call pays for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import ir
from ..passes.parallel_tiles import indexing_maps, static_loop_extents
from .support import source_of

# body ops that are no arithmetic: casts, bit views, the terminator
_FREE_BODY_OPS = ("linalg.yield", "linalg.index", "arith.extf", "arith.truncf", "arith.sitofp",
                  "arith.uitofp", "arith.fptosi", "arith.fptoui", "arith.extsi", "arith.extui",
                  "arith.trunci", "arith.bitcast", "arith.index_cast", "arith.constant")


@dataclass
class OpCost:
    index: int                 # position among the stage's linalg ops, from 0
    name: str                  # linalg.matmul, linalg.conv_2d_nchw_fchw, linalg.generic...
    kind: str                  # contraction, convolution, elementwise, reduction, copy,
                               # constant (inputs all weights: not run per call)
    loops: list[int]           # loop extents (a dynamic loop counts as 1)
    iterators: list[str]       # "parallel" / "reduction", one per loop
    maps: list[str]            # the operands' indexing maps
    operand_types: list[str]
    body_ops: int              # arithmetic operations per iteration
    flops: float               # operations in all (body_ops x iterations)
    bytes: float               # compulsory traffic
    where: str                 # the model's source line
    dims: dict = field(default_factory=dict)  # contraction {batch, m, n, k} / convolution

    @property
    def iterations(self) -> int:
        return math.prod(self.loops)

    @property
    def intensity(self) -> float:
        """Operations per byte of compulsory traffic."""
        return self.flops / self.bytes if self.bytes else float("inf")

    def signature(self) -> str:
        """What makes two ops the same problem: name, operand types, maps,
        iterators and body size (the key of the tuning database)."""
        return f"{self.name}|{';'.join(self.operand_types)}|{';'.join(self.maps)}|" \
               f"{','.join(self.iterators)}|{self.body_ops}"


def analyze_text(linalg_text: str) -> list[OpCost]:
    """The cost of each linalg op of a module at the `linalg` stage."""
    context = ir.new_context()
    original = ir.parse_module(linalg_text, context)
    names = [op.name for op in ir.walk_ops(original.operation) if _is_structured(op.name)]
    generic = ir.parse_module(linalg_text, context)
    with context:
        ir.PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))").run(
            generic.operation)
    ops = [op for op in ir.walk_ops(generic.operation) if _is_structured(op.name)]
    if len(ops) != len(names):  # an op that does not generalize: name what is there
        names = [op.name for op in ops]
    return [_cost(index, name, op) for index, (name, op) in enumerate(zip(names, ops))]


def _is_structured(name: str) -> bool:
    return name.startswith("linalg.") and name not in ("linalg.yield", "linalg.index")


def _cost(index: int, name: str, op) -> OpCost:
    operand_types = [str(v.type) for v in op.operands]
    if op.name != "linalg.generic":  # pack, unpack, softmax...: data movement only
        moved = sum(_tensor_bytes(v.type) for v in op.operands)
        return OpCost(index, name, "copy", [], [], [], operand_types, 0, 0.0, float(moved),
                      source_of(op.location))
    maps = indexing_maps(op)
    loops = static_loop_extents(op, maps) or [1] * maps[0].n_dims
    iterators = [str(a).split("<")[-1].rstrip(">")
                 for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    block = op.regions[0].blocks[0]
    body = [o.operation.name for o in block.operations]
    body_ops = sum(1 for b in body if b not in _FREE_BODY_OPS)
    outputs = _output_count(op)
    inputs = len(op.operands) - outputs
    moved = sum(_tensor_bytes(v.type) for v in list(op.operands)[:inputs])
    for position in range(inputs, len(op.operands)):
        written = _tensor_bytes(op.operands[position].type)
        used = len(list(block.arguments[position].uses)) > 0
        moved += written * (2 if used else 1)
    dims, kind = {}, _kind(iterators, body)
    if kind == "copy" and name in ("linalg.transpose", "linalg.generic") and inputs and all(
            isinstance(v.type, ir.ShapedType) and ir.defining_op_name(v) == "arith.constant"
            for v in list(op.operands)[:inputs]):
        kind = "constant"  # on weights only: a transposed view or packed once, not per call
    if kind == "reduction":
        convolution = ir.infer_convolution_dimensions(op)
        contraction = ir.infer_contraction_dimensions(op)
        multiply_add = "arith.mulf" in body or "arith.muli" in body
        if convolution is not None and multiply_add and list(convolution.filter_loop):
            kind = "convolution"
            dims = {part: list(getattr(convolution, part)) for part in (
                "batch", "output_image", "output_channel", "filter_loop", "input_channel",
                "depth") if hasattr(convolution, part)}
        elif contraction is not None and multiply_add and list(contraction.k):
            kind = "contraction"
            dims = {part: list(getattr(contraction, part)) for part in ("batch", "m", "n", "k")}
    flops = float(math.prod(loops) * body_ops)
    return OpCost(index, name, kind, loops, iterators, [str(m) for m in maps], operand_types,
                  body_ops, flops, float(moved), source_of(op.location), dims)


def _kind(iterators: list[str], body: list[str]) -> str:
    if "reduction" in iterators:
        return "reduction"
    return "elementwise" if any(b not in _FREE_BODY_OPS for b in body) else "copy"


def _output_count(op) -> int:
    segments = op.attributes["operandSegmentSizes"] if "operandSegmentSizes" in op.attributes \
        else None
    if segments is not None:
        return int(str(segments).rstrip(">").split(",")[-1].strip())
    return len(op.results) or 1


def _tensor_bytes(type_) -> int:
    if not isinstance(type_, ir.ShapedType):
        return _element_bytes(type_)
    shaped = ir.ShapedType(type_)
    elements = math.prod(1 if shaped.is_dynamic_dim(i) else shaped.get_dim_size(i)
                         for i in range(shaped.rank))
    return elements * _element_bytes(shaped.element_type)


def _element_bytes(element_type) -> int:
    width = getattr(element_type, "width", None)
    if width is None:
        text = str(element_type)
        digits = "".join(c for c in text if c.isdigit())
        width = int(digits) if digits else 64  # index
    return max(1, (int(width) + 7) // 8)

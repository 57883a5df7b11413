"""The one gateway to the MLIR Python bindings.

Every other module imports MLIR through here, so swapping the bindings (for
example to IREE's) touches this file only. It also owns the few conveniences
the rest of mlirc needs on top of the raw bindings: making a context with all
dialects registered, parsing and printing modules, and capturing diagnostics.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass

from torch_mlir import dialects, ir, passmanager, rewrite
from torch_mlir.dialects import arith, func, linalg, math, memref, scf, tensor  # noqa: F401 (dialects.*)
from torch_mlir._mlir_libs import _stablehlo
from torch_mlir.dialects import torch as torch_dialect
from torch_mlir.dialects.transform import interpreter as transform_interpreter
from torch_mlir.execution_engine import ExecutionEngine

Context = ir.Context
Module = ir.Module
Location = ir.Location
MLIRError = ir.MLIRError
PassManager = passmanager.PassManager
UnitAttr = ir.UnitAttr
StringAttr = ir.StringAttr
TypeAttr = ir.TypeAttr
FunctionType = ir.FunctionType
DiagnosticSeverity = ir.DiagnosticSeverity

SymbolTable = ir.SymbolTable
Type = ir.Type
Attribute = ir.Attribute
IntegerType = ir.IntegerType
IntegerAttr = ir.IntegerAttr
AffineMap = ir.AffineMap
FlatSymbolRefAttr = ir.FlatSymbolRefAttr
F32Type = ir.F32Type
BoolAttr = ir.BoolAttr
Operation = ir.Operation
InsertionPoint = ir.InsertionPoint
AffineMapAttr = ir.AffineMapAttr
AffineDimExpr = ir.AffineDimExpr
ShapedType = ir.ShapedType
MemRefType = ir.MemRefType
VectorType = ir.VectorType
FloatAttr = ir.FloatAttr
DenseElementsAttr = ir.DenseElementsAttr
DenseIntElementsAttr = ir.DenseIntElementsAttr
ArrayAttr = ir.ArrayAttr
DenseI32ArrayAttr = ir.DenseI32ArrayAttr
DenseI64ArrayAttr = ir.DenseI64ArrayAttr
IndexType = ir.IndexType
# a linalg op's contraction (batch/m/n/k) and convolution dimensions, or None
infer_contraction_dimensions = linalg.infer_contraction_dimensions
infer_convolution_dimensions = linalg.infer_convolution_dimensions

__all__ = [
    "dialects", "rewrite", "SymbolTable", "Type", "Attribute", "IntegerType", "AffineMap", "FlatSymbolRefAttr", "F32Type", "InsertionPoint",
    "BoolAttr", "Operation", "AffineMapAttr", "AffineDimExpr", "ShapedType", "MemRefType", "VectorType", "FloatAttr",
    "DenseElementsAttr", "DenseIntElementsAttr", "ArrayAttr", "DenseI32ArrayAttr",
    "DenseI64ArrayAttr", "IndexType", "infer_contraction_dimensions",
    "infer_convolution_dimensions",
    "transform_interpreter",
    "Context", "Module", "Location", "MLIRError", "PassManager", "UnitAttr",
    "StringAttr", "TypeAttr", "FunctionType", "ExecutionEngine", "new_context", "parse_module",
    "module_text", "module_digest", "is_llvm_dialect", "elided_resources", "KEPT_RESOURCE_LIMIT", "walk_ops", "defining_op_name", "op_counts_by_dialect", "Diagnostic",
    "capture_diagnostics", "diagnostics_of", "source_location",
]


_stablehlo.register_stablehlo_passes()


def new_context() -> ir.Context:
    """A context with the upstream dialects, torch-mlir's dialect and passes,
    and StableHLO's."""
    context = ir.Context()
    torch_dialect.register_dialect(context)
    _stablehlo.register_dialect(context)
    return context


def parse_module(text: str, context: ir.Context | None = None) -> ir.Module:
    """Parses MLIR text; raises MLIRError (with diagnostics) on bad input."""
    context = context or new_context()
    with context:
        return ir.Module.parse(text)


def module_text(module, *, elide_large: bool = False, debug_info: bool = False,
                resource_limit: int | None = None) -> str:
    """The module (or operation) as text. `elide_large` hides weights, for
    display only; `resource_limit` elides resources over that many bytes.
    Elided text cannot be parsed back into the same program."""
    limit = 16 if elide_large else None
    operation = module.operation if hasattr(module, "operation") else module
    return operation.get_asm(
        large_elements_limit=limit, large_resource_limit=limit or resource_limit,
        enable_debug_info=debug_info)


# Weights bigger than this are elided from the IR text kept for each stage:
# printing a ResNet's 100 MB of weights as hex at every stage costs more than
# compiling it. Dumps (dump_dir) and failure reports print them in full.
KEPT_RESOURCE_LIMIT = 1 << 20


def elided_resources(text: str) -> set[str]:
    """Resources the text refers to but does not hold (printed with a limit)."""
    referenced = set(re.findall(r"dense_resource<([^>]+)>", text))
    if not referenced:
        return set()
    present = set(re.findall(r'^\s*([^\s:"]+): "0x', text, re.MULTILINE))
    return referenced - present


def is_llvm_dialect(module: ir.Module) -> bool:
    """Whether every op at the module's top level is in the llvm dialect (the
    last stage, ready for translation to LLVM IR)."""
    ops = list(module.body.operations)
    return bool(ops) and all(op.operation.name.startswith("llvm.") for op in ops)


def module_digest(module: ir.Module) -> str:
    """SHA-256 of the module's bytecode: covers weights, costs no text printing."""
    import hashlib
    import io
    buffer = io.BytesIO()
    module.operation.write_bytecode(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def defining_op_name(value) -> str:
    """The name of the operation defining `value` ('' for a block argument).
    Through .operation: some op views' `name` is one of the op's attributes
    (memref.get_global's is the global's name)."""
    owner = value.owner
    return owner.operation.name if hasattr(owner, "operation") else ""


def walk_ops(operation):
    """Yields every operation nested under `operation` (pre-order), itself excluded."""
    for region in operation.regions:
        for block in region.blocks:
            for op in block.operations:
                yield op.operation
                yield from walk_ops(op.operation)


def op_counts_by_dialect(module: ir.Module) -> Counter:
    """How many operations of each dialect the module holds (builtin excluded)."""
    counts: Counter = Counter()
    for op in walk_ops(module.operation):
        dialect = op.name.split(".", 1)[0]
        if dialect != "builtin":
            counts[dialect] += 1
    return counts


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"


_SEVERITY = {
    ir.DiagnosticSeverity.ERROR: "error",
    ir.DiagnosticSeverity.WARNING: "warning",
    ir.DiagnosticSeverity.NOTE: "note",
    ir.DiagnosticSeverity.REMARK: "remark",
}


@contextlib.contextmanager
def capture_diagnostics(context: ir.Context):
    """Collects the context's diagnostics into a list instead of stderr."""
    captured: list[Diagnostic] = []

    def handler(diagnostic) -> bool:
        captured.append(Diagnostic(
            _SEVERITY.get(diagnostic.severity, "error"),
            source_location(diagnostic.location),
            str(diagnostic.message)))
        for note in diagnostic.notes:
            captured.append(Diagnostic("note", source_location(note.location),
                                       str(note.message)))
        return True

    handle = context.attach_diagnostic_handler(handler)
    try:
        yield captured
    finally:
        handle.detach()


def diagnostics_of(error: ir.MLIRError) -> list[Diagnostic]:
    """The diagnostics an MLIRError carries (with their notes)."""
    found = []
    for diagnostic in error.error_diagnostics:
        found.append(Diagnostic("error", source_location(diagnostic.location),
                                str(diagnostic.message)))
        for note in diagnostic.notes:
            found.append(Diagnostic("note", source_location(note.location), str(note.message)))
    return found


_FILE_LINE = re.compile(r'"([^"]+)":(\d+):(\d+)')


def source_location(location) -> str:
    """'file:line' for a location that points into source code, else ''.

    Call-site locations list the innermost frame first; the first frame
    outside installed packages (torch's own modules) is the user's line."""
    frames = _FILE_LINE.findall(str(location))
    if not frames:
        return ""
    user_frames = [f for f in frames if "site-packages" not in f[0]]
    path, line, _ = (user_frames or frames)[0]
    return f"{path}:{line}"

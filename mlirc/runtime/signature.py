"""What a compiled function takes and returns: shapes, dtypes and the Python
structure (tuple, list, dict) of its inputs and outputs.

The signature travels with the IR as the module attribute `mlirc.signature`,
so a `.mlir` dumped at any stage can be compiled again on its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..errors import InputError

SIGNATURE_ATTR = "mlirc.signature"


@dataclass(frozen=True)
class DType:
    name: str          # mlirc's short name, as in `2x3xf32`
    numpy: np.dtype
    mlir: str          # element type in linalg/memref IR (signless)
    torch: str         # element type in !torch.vtensor


def _ml_dtypes() -> list[DType]:
    """bfloat16, the float8 formats and 4-bit integers, which numpy knows
    through ml_dtypes. A 4-bit integer takes a byte in numpy, as an i4 does
    in LLVM's memory layout."""
    try:
        import ml_dtypes
    except ImportError:
        return []
    return [DType("bf16", np.dtype(ml_dtypes.bfloat16), "bf16", "bf16"),
            DType("i4", np.dtype(ml_dtypes.int4), "i4", "si4"),
            DType("u4", np.dtype(ml_dtypes.uint4), "i4", "ui4")] + [
        DType(name, np.dtype(getattr(ml_dtypes, attribute)), name, name)
        for name, attribute in [("f8E4M3FN", "float8_e4m3fn"), ("f8E5M2", "float8_e5m2"),
                                ("f8E4M3FNUZ", "float8_e4m3fnuz"),
                                ("f8E5M2FNUZ", "float8_e5m2fnuz")]]


DTYPES = {d.name: d for d in [
    DType("f32", np.dtype(np.float32), "f32", "f32"),
    DType("f64", np.dtype(np.float64), "f64", "f64"),
    DType("f16", np.dtype(np.float16), "f16", "f16"),
    DType("i8", np.dtype(np.int8), "i8", "si8"),
    DType("u8", np.dtype(np.uint8), "i8", "ui8"),
    DType("i16", np.dtype(np.int16), "i16", "si16"),
    DType("i32", np.dtype(np.int32), "i32", "si32"),
    DType("i64", np.dtype(np.int64), "i64", "si64"),
    DType("bool", np.dtype(np.bool_), "i1", "i1"),
    DType("u16", np.dtype(np.uint16), "i16", "ui16"),
    DType("u32", np.dtype(np.uint32), "i32", "ui32"),
    DType("u64", np.dtype(np.uint64), "i64", "ui64"),
    *_ml_dtypes(),
]}
_BY_NUMPY = {d.numpy: d for d in DTYPES.values()}
_BY_TORCH = {d.torch: d for d in DTYPES.values()}
# Signless MLIR types are read as signed: `i8` is int8, never uint8.
_BY_MLIR = {d.mlir: d for d in reversed(list(DTYPES.values()))}


def dtype_of_numpy(dtype) -> DType:
    try:
        return _BY_NUMPY[np.dtype(dtype)]
    except KeyError:
        raise InputError(f"dtype {np.dtype(dtype)} is not supported; "
                         f"supported: {', '.join(DTYPES)}") from None


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str

    @property
    def numpy_dtype(self) -> np.dtype:
        return DTYPES[self.dtype].numpy

    def __str__(self) -> str:
        return "x".join([*("?" if d == -1 else str(d) for d in self.shape), self.dtype])

    @property
    def is_dynamic(self) -> bool:
        return -1 in self.shape

    @staticmethod
    def parse(text: str) -> "TensorSpec":
        """'2x3xf32' -> TensorSpec((2, 3), 'f32'); 'f32' is a scalar; '?' is a
        dynamic dimension (-1)."""
        *dims, dtype = text.split("x")
        if dtype not in DTYPES or not all(d.isdigit() or d == "?" for d in dims):
            raise InputError(f"cannot read tensor type '{text}': expected e.g. 2x3xf32")
        return TensorSpec(tuple(-1 if d == "?" else int(d) for d in dims), dtype)


@dataclass
class Signature:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # The nesting of the model's arguments and results (see structure.py);
    # None means flat: a single tensor or a tuple of them.
    in_tree: object = None
    out_tree: object = None
    input_names: list[str] = field(default_factory=list)
    # A model that updates inputs in place (x.add_(1), x[0] = 0) returns their
    # new values first: output i is the new value of input input_updates[i].
    # The runtime writes them back into the caller's tensors, as eager does.
    input_updates: list[int] = field(default_factory=list)
    # Dynamic dimensions: symbols, their bounds, output sizes (dynamic.py).
    dynamic: dict | None = None
    # Output shapes by input shapes, for dynamic signatures: binding the
    # symbols and evaluating the size expressions costs several microseconds,
    # a tenth of a small model's call. Cleared by check_consistent.
    _output_shapes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def user_outputs(self) -> list[TensorSpec]:
        """The outputs the model returns (after its input updates)."""
        return self.outputs[len(self.input_updates):]

    def to_json(self) -> str:
        data = {
            "inputs": [str(s) for s in self.inputs],
            "outputs": [str(s) for s in self.outputs],
            "in_tree": self.in_tree, "out_tree": self.out_tree,
            "input_names": self.input_names,
        }
        if self.input_updates:
            data["input_updates"] = self.input_updates
        if self.dynamic:
            data["dynamic"] = self.dynamic
        return json.dumps(data)

    @staticmethod
    def from_json(text: str) -> "Signature":
        data = json.loads(text)
        signature = Signature([TensorSpec.parse(s) for s in data["inputs"]],
                              [TensorSpec.parse(s) for s in data["outputs"]],
                              data.get("in_tree"), data.get("out_tree"),
                              data.get("input_names", []), data.get("input_updates", []),
                              data.get("dynamic"))
        signature.check_consistent()
        return signature

    def output_shapes(self, inputs: list, describe=lambda i: f"input {i}") -> list[tuple]:
        """The output shapes of a call on `inputs`; for a dynamic signature,
        InputError when its sizes break the record (`describe(i)` names input i)."""
        if not self.dynamic:
            return [spec.shape for spec in self.outputs]
        key = tuple(a.shape for a in inputs)
        shapes = self._output_shapes.get(key)
        if shapes is None:
            from . import dynamic
            sizes = dynamic.bind(self.dynamic, list(key), describe)
            shapes = dynamic.output_shapes(self.dynamic, self.outputs, sizes)
            if len(self._output_shapes) >= 256:
                self._output_shapes.clear()
            self._output_shapes[key] = shapes
        return shapes

    def example_shapes(self) -> tuple[list[tuple], list[tuple]]:
        """Input and output shapes with each dynamic size at its example value."""
        if not self.dynamic:
            return [s.shape for s in self.inputs], [s.shape for s in self.outputs]
        from . import dynamic
        sizes = dynamic.example_sizes(self.dynamic)
        shapes = [list(spec.shape) for spec in self.inputs]
        for index, axis, symbol in self.dynamic.get("inputs", []):
            shapes[index][axis] = sizes[symbol]
        return [tuple(s) for s in shapes], dynamic.output_shapes(self.dynamic, self.outputs, sizes)

    def check_consistent(self) -> None:
        """Raises InputError when the parts of a (possibly edited) signature
        disagree: update indices, leaf counts of the structures."""
        from . import structure
        from . import dynamic
        self._output_shapes.clear()
        if self.dynamic is not None:
            dynamic.check_record(self.dynamic, self.inputs, self.outputs)
        elif any(spec.is_dynamic for spec in self.inputs + self.outputs):
            raise InputError("dynamic dimensions (?) without the record of their symbols")
        updates = self.input_updates
        if not isinstance(updates, list) or len(updates) > len(self.outputs) or not all(
                type(i) is int and 0 <= i < len(self.inputs) for i in updates):
            raise InputError(f"input_updates {updates!r} does not fit "
                             f"{len(self.inputs)} inputs and {len(self.outputs)} outputs")
        for name, tree, specs in (("out_tree", self.out_tree, self.user_outputs),
                                  ("in_tree", self.in_tree, self.inputs)):
            if tree is None:
                continue
            try:
                kinds = structure.leaves(tree)
            except (AttributeError, TypeError, ValueError, StopIteration) as error:
                raise InputError(f"{name} is not a valid structure: {error}") from None
            tensors = [k for k in kinds if not (isinstance(k, dict) and "const" in k)]
            if len(tensors) != len(specs):
                raise InputError(f"{name} has {len(tensors)} leaves for {len(specs)} values")
            for kind, spec in zip(tensors, specs):  # a complex leaf is held as real pairs
                if kind not in structure.COMPLEX_LEAVES:
                    continue
                pair_dtype = dtype_of_numpy(structure.COMPLEX_LEAVES[kind]).name
                if spec.dtype != pair_dtype or not spec.shape or spec.shape[-1] != 2:
                    raise InputError(f"{name}: a {kind} leaf needs a {pair_dtype} tensor with "
                                     f"a last axis of 2, the function has {spec}")

    def describe(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"({ins}) -> ({outs})"


def attach(module: ir.Module, signature: Signature) -> None:
    with module.context:
        module.operation.attributes[SIGNATURE_ATTR] = ir.StringAttr.get(signature.to_json())


def read(module: ir.Module, entry: str = "main") -> Signature:
    """The signature stored on the module, else one read off the entry
    function's tensor, memref or !torch.vtensor types."""
    attributes = module.operation.attributes
    if SIGNATURE_ATTR in attributes:
        try:
            stored = Signature.from_json(ir.StringAttr(attributes[SIGNATURE_ATTR]).value)
        except (ValueError, KeyError, TypeError, AttributeError, InputError,
                RuntimeError) as error:  # RuntimeError: bytes that are not UTF-8
            raise InputError(f"the module's {SIGNATURE_ATTR} attribute is not a valid "
                             f"signature: {error}") from None
        _check_against_function(module, entry, stored)
        return stored
    return _infer_from_function(module, entry)


def _check_against_function(module: ir.Module, entry: str, stored: Signature) -> None:
    """Refuses a stored signature that disagrees with the entry function's
    own types (tensor-level: inputs and results; bufferized: inputs then
    out-parameters). LLVM-level functions carry no shapes to compare."""
    func = next((op for op in module.body.operations if op.operation.name == "func.func" and
                 ir.StringAttr(op.attributes["sym_name"]).value == entry), None)
    if func is None:
        return
    function_type = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    arguments = [str(t) for t in function_type.inputs]
    if any(t.startswith("memref") for t in arguments):
        expected = [("input", i, spec) for i, spec in enumerate(stored.inputs)] + \
                   [("output", i, spec) for i, spec in enumerate(stored.outputs)]
        actual = arguments
    else:
        expected = [("input", i, spec) for i, spec in enumerate(stored.inputs)]
        actual = arguments
        if len(stored.outputs) != len(function_type.results):
            raise InputError(f"the module's {SIGNATURE_ATTR} lists {len(stored.outputs)} "
                             f"outputs, but @{entry} returns {len(function_type.results)}")
        results = [str(t) for t in function_type.results]
        for i, (spec, type_text) in enumerate(zip(stored.outputs, results)):
            _compare(entry, "output", i, spec, type_text)
    if len(expected) != len(actual):
        raise InputError(f"the module's {SIGNATURE_ATTR} has {len(expected)} arguments, "
                         f"but @{entry} takes {len(actual)}")
    for (kind, i, spec), type_text in zip(expected, actual):
        _compare(entry, kind, i, spec, type_text)


def _compare(entry: str, kind: str, index: int, spec: "TensorSpec", type_text: str) -> None:
    try:
        actual = _spec_of_type(type_text)
    except InputError:
        return  # a boundary type mlirc does not read (checked where it is used)
    if actual != spec:
        raise InputError(f"the module's {SIGNATURE_ATTR} says {kind} {index + 1} is {spec}, "
                         f"but @{entry} has {type_text}")


def entry_function(module: ir.Module, entry: str = "main"):
    for op in module.body.operations:
        if op.operation.name == "func.func" and \
                ir.StringAttr(op.attributes["sym_name"]).value == entry:
            return op
    raise InputError(f"the module has no function @{entry} to compile")


_TORCH_TENSOR = re.compile(r"^!torch\.vtensor<\[([-\d,?]*)\],(\w+)>$")
_BUILTIN_SHAPED = re.compile(r"^(?:tensor|memref)<((?:(?:\d+|\?)x)*)(\w+)>$")


def _spec_of_type(type_text: str) -> TensorSpec:
    if "complex" in type_text:
        raise InputError(f"complex tensors ({type_text}) cannot be compiled yet: mlirc's "
                         "backends take real element types; pass torch.view_as_real(x) "
                         "and return torch.view_as_real(y) (the last axis holds real and "
                         "imaginary parts)")
    match = _TORCH_TENSOR.match(type_text)
    if match:
        dims = [-1 if d == "?" else int(d) for d in match.group(1).split(",") if d]
        table = _BY_TORCH
    else:
        match = _BUILTIN_SHAPED.match(type_text)
        if not match:
            raise InputError(f"cannot use type {type_text} at the function boundary: "
                             "only statically shaped tensors are supported")
        dims = [-1 if d == "?" else int(d) for d in match.group(1).split("x") if d]
        table = _BY_MLIR
    if any(d < -1 for d in dims):
        raise InputError(f"cannot read the dimensions of {type_text}")
    element = match.group(2)
    if element not in table:
        raise InputError(f"element type {element} in {type_text} is not supported")
    return TensorSpec(tuple(dims), table[element].name)


def function_specs(module: ir.Module, entry: str = "main") -> Signature:
    """The entry function's argument and result types as a Signature with
    no structure (dynamic dimensions as -1, not yet named)."""
    func = entry_function(module, entry)
    function_type = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    if any(str(t).startswith("memref") for t in function_type.inputs):
        raise InputError("this module is already bufferized and carries no "
                         f"'{SIGNATURE_ATTR}' attribute, so its results are unknown; "
                         "start from a stage dumped by mlirc or from a tensor-level stage")
    return Signature([_spec_of_type(str(t)) for t in function_type.inputs],
                     [_spec_of_type(str(t)) for t in function_type.results])


def _infer_from_function(module: ir.Module, entry: str) -> Signature:
    signature = function_specs(module, entry)
    if any(spec.is_dynamic for spec in signature.inputs + signature.outputs):
        raise InputError(f"@{entry} has dynamic dimensions ({signature.describe()}) and the "
                         f"module no '{SIGNATURE_ATTR}' naming them: compile a PyTorch model "
                         "with dynamic_shapes=, or fix the sizes (ONNX: input_shapes=)")
    return signature

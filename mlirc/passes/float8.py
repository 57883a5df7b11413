"""8-bit floats (f8E4M3FN, f8E4M3FNUZ, f8E5M2, f8E5M2FNUZ) on the CPU.

LLVM has no 8-bit float type: MLIR's LLVM lowering maps f8 values to i8 but
cannot convert `arith.extf`/`arith.truncf` to or from them, and torch-mlir's
ONNX lowering has no Cast to f8. Two passes fill the gap:

- `mlirc-onnx-cast-to-f8` (before the ONNX -> torch conversion): an ONNX
  Cast to f8 becomes `torch.aten.to.dtype`; with `saturate` (ONNX's default)
  the value is first clamped to the format's largest finite value (NaN
  stays NaN).
- `mlirc-expand-f8-casts` (on linalg, before bufferization): every scalar
  `arith.extf` from f8 and `arith.truncf` to f8 becomes integer arithmetic
  on the bit pattern: exact decoding, and round-to-nearest-even encoding
  where overflow gives Inf (E5M2) or NaN (the others), as in ONNX with
  saturate=0 and as `arith.truncf` is defined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass


@dataclass(frozen=True)
class Float8Format:
    exponent_bits: int
    mantissa_bits: int
    bias: int
    has_inf: bool        # E5M2 only: exponent all ones, mantissa 0
    unsigned_zero: bool  # the FNUZ formats: 0x80 is the only NaN, no -0
    max_code: int        # bit pattern (sign clear) of the largest finite value
    max_value: float
    torch_dtype: int     # torch's ScalarType number

    @property
    def nan_code(self) -> int:
        return 0x80 if self.unsigned_zero else 0x7F

    @property
    def overflow_code(self) -> int:
        return 0x7C if self.has_inf else self.nan_code


FORMATS = {
    "f8E4M3FN": Float8Format(4, 3, 7, False, False, 0x7E, 448.0, 24),
    "f8E4M3FNUZ": Float8Format(4, 3, 8, False, True, 0x7F, 240.0, 26),
    "f8E5M2": Float8Format(5, 2, 15, True, False, 0x7B, 57344.0, 23),
    "f8E5M2FNUZ": Float8Format(5, 2, 16, False, True, 0x7F, 57344.0, 25),
}

# ONNX TensorProto element types of the formats above.
ONNX_TYPES = {17: "f8E4M3FN", 18: "f8E4M3FNUZ", 19: "f8E5M2", 20: "f8E5M2FNUZ"}


def _element_type_name(type_) -> str:
    """'f8E4M3FN' for '!torch.vtensor<[3,5],f8E4M3FN>' or 'tensor<3xf32>'."""
    match = re.search(r"[,x<]([a-zA-Z0-9]+)>$", str(type_))
    return match.group(1) if match else str(type_)


# ---- torch level: ONNX Cast to f8 --------------------------------------------

@register_pass
@dataclass(frozen=True)
class OnnxCastToFloat8(PythonPass):
    name = "mlirc-onnx-cast-to-f8"
    description = "Rewrite ONNX Cast to an 8-bit float as (saturation and) torch.aten.to.dtype"

    def run(self, module_op) -> None:
        casts = [op for op in ir.walk_ops(module_op) if op.name == "torch.operator"
                 and ir.StringAttr(op.attributes["name"]).value == "onnx.Cast"
                 and _element_type_name(op.results[0].type) in FORMATS]
        with module_op.context:
            for op in casts:
                self._rewrite(op)

    def _rewrite(self, op) -> None:
        target = FORMATS[_element_type_name(op.results[0].type)]
        saturate = ("torch.onnx.saturate" not in op.attributes
                    or ir.IntegerAttr(op.attributes["torch.onnx.saturate"]).value != 0)
        value = op.operands[0]
        source = _element_type_name(value.type)
        create = ir.Operation.create
        with ir.InsertionPoint(op), op.location:
            if saturate:
                original = value
                for bound, clamp in ((target.max_value, "torch.aten.minimum"),
                                     (-target.max_value, "torch.aten.maximum")):
                    literal = create("torch.vtensor.literal",
                                     results=[ir.Type.parse(f"!torch.vtensor<[],{source}>")],
                                     attributes={"value": ir.Attribute.parse(
                                         f"dense<{bound!r}> : tensor<{source}>")}).result
                    value = create(clamp, results=[value.type],
                                   operands=[value, literal]).result
                # torch-mlir's minimum/maximum do not keep NaN: put it back.
                is_nan = create("torch.aten.isnan", results=[ir.Type.parse(
                    str(original.type).replace(f",{source}>", ",i1>"))],
                    operands=[original]).result
                value = create("torch.aten.where.self", results=[original.type],
                               operands=[is_nan, original, value]).result
            dtype = create("torch.constant.int", results=[ir.Type.parse("!torch.int")],
                           attributes={"value": ir.IntegerAttr.get(
                               ir.IntegerType.get_signless(64), target.torch_dtype)}).result
            false = create("torch.constant.bool", results=[ir.Type.parse("!torch.bool")],
                           attributes={"value": ir.BoolAttr.get(False)}).result
            none = create("torch.constant.none", results=[ir.Type.parse("!torch.none")]).result
            converted = create("torch.aten.to.dtype", results=[op.results[0].type],
                               operands=[value, dtype, false, false, none]).result
        op.results[0].replace_all_uses_with(converted)
        op.erase()


# ---- arith level: extf / truncf as bit arithmetic ----------------------------

class _Bits:
    """Builds i32 arithmetic at the current insertion point."""

    def __init__(self):
        self.i32 = ir.IntegerType.get_signless(32)
        self.f32 = ir.F32Type.get()
        self.arith = ir.dialects.arith

    def const(self, value: int):
        return self.arith.constant(self.i32, value)

    def fconst(self, value: float):
        return self.arith.constant(self.f32, value)

    def cmp(self, predicate: str, lhs, rhs):
        codes = {"eq": 0, "ne": 1, "ult": 6, "ugt": 8, "uge": 9}
        return self.arith.cmpi(ir.IntegerAttr.get(ir.IntegerType.get_signless(64),
                                                  codes[predicate]), lhs, rhs)

    def select(self, condition, if_true, if_false):
        return self.arith.select(condition, if_true, if_false)

    def power_of_two(self, exponent: int):
        """2**exponent as an f32 constant (exact: built from its bits)."""
        return self.arith.bitcast(self.f32, self.const((exponent + 127) << 23))


def _decode(bits: _Bits, byte, fmt: Float8Format):
    """f32 value of an i8 f8 bit pattern."""
    a = bits.arith
    code = a.extui(bits.i32, byte)
    sign = a.shli(a.andi(code, bits.const(0x80)), bits.const(24))
    magnitude = a.andi(code, bits.const(0x7F))
    exponent = a.shrui(magnitude, bits.const(fmt.mantissa_bits))
    mantissa = a.andi(magnitude, bits.const((1 << fmt.mantissa_bits) - 1))
    normal = a.ori(a.shli(a.addi(exponent, bits.const(127 - fmt.bias)), bits.const(23)),
                   a.shli(mantissa, bits.const(23 - fmt.mantissa_bits)))
    # Subnormals (and zero): mantissa * 2**(1 - bias - mantissa_bits), exactly.
    subnormal = a.bitcast(bits.i32, a.mulf(
        a.uitofp(bits.f32, mantissa),
        bits.power_of_two(1 - fmt.bias - fmt.mantissa_bits)))
    value = bits.select(bits.cmp("eq", exponent, bits.const(0)), subnormal, normal)
    nan, inf = bits.const(0x7FC00000), bits.const(0x7F800000)
    if fmt.unsigned_zero:
        value = bits.select(bits.cmp("eq", code, bits.const(0x80)), nan, value)
    elif fmt.has_inf:
        top = bits.cmp("eq", exponent, bits.const((1 << fmt.exponent_bits) - 1))
        special = bits.select(bits.cmp("eq", mantissa, bits.const(0)), inf, nan)
        value = bits.select(top, special, value)
    else:
        value = bits.select(bits.cmp("eq", magnitude, bits.const(0x7F)), nan, value)
    return a.bitcast(bits.f32, a.ori(value, sign))


def _encode(bits: _Bits, value, fmt: Float8Format):
    """i8 f8 bit pattern of an f32 value: round to nearest even, overflow to
    Inf or NaN."""
    a, m = bits.arith, fmt.mantissa_bits
    word = a.bitcast(bits.i32, value)
    sign = a.andi(a.shrui(word, bits.const(24)), bits.const(0x80))
    absolute = a.andi(word, bits.const(0x7FFFFFFF))
    # Normal results: round the 23-bit mantissa to m bits (ties to even),
    # then move the exponent from f32's bias to the format's.
    shift = 23 - m
    rounded = a.addi(absolute, a.addi(
        bits.const((1 << (shift - 1)) - 1),
        a.andi(a.shrui(absolute, bits.const(shift)), bits.const(1))))
    normal = a.subi(a.shrui(rounded, bits.const(shift)), bits.const((127 - fmt.bias) << m))
    # Subnormal results: |x| / 2**(1 - bias - m) rounded to an integer by
    # f32 addition of 2**23 (round to nearest even); the result, at most
    # 2**m, is the code itself (2**m being the smallest normal).
    scaled = a.mulf(a.bitcast(bits.f32, absolute),
                    bits.power_of_two(fmt.bias - 1 + m))
    subnormal = a.subi(a.bitcast(bits.i32, a.addf(scaled, bits.fconst(2.0 ** 23))),
                       bits.const(0x4B000000))
    smallest_normal = bits.const((1 - fmt.bias + 127) << 23)
    code = bits.select(bits.cmp("ult", absolute, smallest_normal), subnormal, normal)
    code = bits.select(bits.cmp("ugt", code, bits.const(fmt.max_code)),
                       bits.const(fmt.overflow_code), code)
    code = bits.select(bits.cmp("ugt", absolute, bits.const(0x7F800000)),
                       bits.const(fmt.nan_code), code)
    if fmt.unsigned_zero:  # no negative zero, and NaN is 0x80 whatever the sign
        signed = bits.select(bits.cmp("eq", code, bits.const(0)), code, a.ori(code, sign))
    else:
        signed = a.ori(code, sign)
    return a.trunci(ir.IntegerType.get_signless(8), signed)


@register_pass
@dataclass(frozen=True)
class ExpandFloat8Casts(PythonPass):
    name = "mlirc-expand-f8-casts"
    description = "Rewrite scalar arith.extf/truncf to and from 8-bit floats as integer arithmetic"

    def run(self, module_op) -> None:
        casts = [op for op in ir.walk_ops(module_op)
                 if op.name in ("arith.extf", "arith.truncf")
                 and (str(op.operands[0].type) in FORMATS
                      or str(op.results[0].type) in FORMATS)]
        with module_op.context:
            for op in casts:
                with ir.InsertionPoint(op), op.location:
                    replacement = self._expand(op)
                op.results[0].replace_all_uses_with(replacement)
                op.erase()

    @staticmethod
    def _expand(op):
        bits, a = _Bits(), ir.dialects.arith
        source, result = op.operands[0], op.results[0].type
        i8 = ir.IntegerType.get_signless(8)
        if str(source.type) in FORMATS:  # extf: decode, then widen or narrow to the result
            value = _decode(bits, a.bitcast(i8, source), FORMATS[str(source.type)])
            return value if result == bits.f32 else _convert_float(value, result)
        value = source if source.type == bits.f32 else _convert_float(source, bits.f32)
        return a.bitcast(result, _encode(bits, value, FORMATS[str(result)]))


def _convert_float(value, target):
    """extf or truncf between standard float types."""
    arith = ir.dialects.arith
    widths = {"f16": 16, "bf16": 16, "f32": 32, "f64": 64}
    if widths[str(value.type)] < widths[str(target)]:
        return arith.extf(target, value)
    return arith.truncf(target, value)

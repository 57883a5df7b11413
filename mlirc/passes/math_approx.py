"""Polynomial versions of `math.exp` and `math.erf` on f32, scalar or vector.

LLVM has no vector exp or erf on x86: a `math.exp` on vector<64xf32> becomes
64 calls to libm's expf, so vectorized softmax and GELU would be no faster
than scalar loops. These rewrites expand the ops into arithmetic that
vectorizes (MLIR's own polynomial approximation patterns are not exposed as
a pass in these bindings):

- exp: Cephes' expf. x = k*ln2 + r with |r| <= ln2/2, e^r by a degree-6
  polynomial, 2^k by building float exponent bits (as two factors, so
  subnormal and near-overflow results come out right). About 1 ulp; +Inf
  above 88.72, 0 below -104, NaN stays NaN.
- erf: |x| < 0.5 by its Taylor series (terms to x^13), else
  Abramowitz-Stegun 7.1.26 (absolute error <= 1.5e-7), sign restored.

f64 and other element types keep libm.
"""

from __future__ import annotations

import math as pymath
from dataclasses import dataclass

from .. import ir
from .base import PythonPass, register_pass

_EXP_POLYNOMIAL = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                   4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_MAX, _EXP_MIN = 89.0, -104.0  # beyond: +Inf and 0 anyway
# erf, Abramowitz-Stegun 7.1.26
_AS_P = 0.3275911
_AS_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
# erf(x) = x * sum 2/sqrt(pi) (-1)^n (x^2)^n / (n! (2n+1)), n = 0..6; highest
# power first, for Horner's rule
_ERF_TAYLOR = tuple(2 / pymath.sqrt(pymath.pi) * (-1) ** n / (pymath.factorial(n) * (2 * n + 1))
                    for n in reversed(range(7)))


class _Builder:
    """arith/math ops on one f32 type (scalar or vector), at the current
    insertion point."""

    def __init__(self, float_type):
        self.type = float_type
        f32 = ir.F32Type.get()
        i32 = ir.IntegerType.get_signless(32)
        self.is_vector = isinstance(float_type, ir.VectorType)
        self.int_type = ir.VectorType.get(float_type.shape, i32) if self.is_vector else i32
        self._f32, self._i32 = f32, i32

    def const(self, value: float):
        attr = ir.FloatAttr.get(self._f32, value)
        if self.is_vector:
            attr = ir.DenseElementsAttr.get_splat(self.type, attr)
        return ir.dialects.arith.constant(self.type, attr)

    def int_const(self, value: int):
        attr = ir.IntegerAttr.get(self._i32, value)
        if self.is_vector:
            attr = ir.DenseElementsAttr.get_splat(self.int_type, attr)
        return ir.dialects.arith.constant(self.int_type, attr)

    def fma(self, a, b, c):
        return ir.dialects.math.fma(a, b, c)

    def mul(self, a, b):
        return ir.dialects.arith.mulf(a, b)

    def add(self, a, b):
        return ir.dialects.arith.addf(a, b)

    def sub(self, a, b):
        return ir.dialects.arith.subf(a, b)

    def less(self, a, b):
        return ir.dialects.arith.cmpf(ir.dialects.arith.CmpFPredicate.OLT, a, b)

    def select(self, condition, a, b):
        return ir.dialects.arith.select(condition, a, b)

    def horner(self, x, coefficients):
        result = self.const(coefficients[0])
        for c in coefficients[1:]:
            result = self.fma(result, x, self.const(c))
        return result


def _expand_exp(b: _Builder, x):
    arith = ir.dialects.arith
    # clamped so that k stays within two float exponents; NaN passes through
    x = arith.minimumf(arith.maximumf(x, b.const(_EXP_MIN)), b.const(_EXP_MAX))
    # k = round(x / ln2); r = x - k*ln2 in two parts for accuracy
    k = ir.dialects.math.floor(b.fma(x, b.const(1 / pymath.log(2)), b.const(0.5)))
    r = b.fma(k, b.const(-_LN2_HI), x)
    r = b.fma(k, b.const(-_LN2_LO), r)
    r2 = b.mul(r, r)
    y = b.add(b.fma(b.horner(r, _EXP_POLYNOMIAL), r2, r), b.const(1.0))
    # 2^k as 2^k1 * 2^k2, each a valid float exponent, so that results near
    # the top of the range stay finite and small ones become subnormal
    half = ir.dialects.math.floor(b.mul(k, b.const(0.5)))
    for part in (half, b.sub(k, half)):
        bits = arith.shli(arith.addi(arith.fptosi(b.int_type, part), b.int_const(127)),
                          b.int_const(23))
        y = b.mul(y, arith.bitcast(b.type, bits))
    return y  # above 88.72 the product overflows to +Inf; below -104, 0


def _expand_erf(b: _Builder, x):
    magnitude = ir.dialects.math.absf(x)
    # small |x|: Taylor series in x^2
    x2 = b.mul(x, x)
    series = b.horner(x2, _ERF_TAYLOR)
    small = b.mul(series, x)
    # large |x|: 1 - poly(t) * exp(-x^2), t = 1 / (1 + p|x|)
    t = ir.dialects.arith.divf(b.const(1.0), b.fma(magnitude, b.const(_AS_P), b.const(1.0)))
    polynomial = b.mul(b.horner(t, _AS_A), t)
    tail = b.sub(b.const(1.0), b.mul(polynomial, _expand_exp(b, ir.dialects.arith.negf(x2))))
    large = ir.dialects.math.copysign(tail, x)
    return b.select(b.less(magnitude, b.const(0.5)), small, large)


_EXPANSIONS = {"math.exp": _expand_exp, "math.erf": _expand_erf}


def _is_f32(type_) -> bool:
    element = type_.element_type if isinstance(type_, ir.VectorType) else type_
    return isinstance(element, ir.F32Type)


@register_pass
@dataclass(frozen=True)
class ApproximateMath(PythonPass):
    name = "mlirc-approximate-math"
    description = "Expand f32 math.exp and math.erf into polynomials that vectorize"
    ops: tuple[str, ...] = ("exp", "erf")

    def run(self, module_op) -> None:
        wanted = {f"math.{name}" for name in self.ops}
        targets = [op for op in ir.walk_ops(module_op)
                   if op.name in wanted and _is_f32(op.results[0].type)]
        with module_op.context:
            for op in targets:
                with ir.InsertionPoint(op), op.location:
                    builder = _Builder(op.results[0].type)
                    value = _EXPANSIONS[op.name](builder, op.operands[0])
                op.results[0].replace_all_uses_with(value)
                op.erase()

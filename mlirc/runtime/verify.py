"""Comparing mlirc's outputs with the framework's own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OutputComparison:
    index: int
    shape: tuple
    dtype: str
    max_abs_error: float
    max_rel_error: float
    passed: bool


@dataclass
class VerifyReport:
    outputs: list[OutputComparison]
    rtol: float
    atol: float

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def max_abs_error(self) -> float:
        return max((o.max_abs_error for o in self.outputs), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((o.max_rel_error for o in self.outputs), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'output':<8}{'shape':<18}{'dtype':<7}{'max abs err':>12}{'max rel err':>12}  result"]
        for o in self.outputs:
            lines.append(f"{o.index:<8}{str(list(o.shape)):<18}{o.dtype:<7}"
                         f"{o.max_abs_error:>12.3g}{o.max_rel_error:>12.3g}  "
                         f"{'ok' if o.passed else 'MISMATCH'}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict} (rtol={self.rtol:g}, atol={self.atol:g})")
        return "\n".join(lines)


def compare(expected: list[np.ndarray], actual: list[np.ndarray],
            rtol: float = 1e-4, atol: float = 1e-5) -> VerifyReport:
    if len(expected) != len(actual):
        raise ValueError(f"expected {len(expected)} outputs, got {len(actual)}")
    results = []
    for index, (want, got) in enumerate(zip(expected, actual)):
        want, got = np.asarray(want), np.asarray(got)
        if np.iscomplexobj(want) or np.iscomplexobj(got):  # compared part by part
            want, got = (np.stack([np.real(a), np.imag(a)], -1) for a in (want, got))
        if want.shape != got.shape:
            results.append(OutputComparison(index, got.shape, str(got.dtype),
                                            float("inf"), float("inf"), False))
            continue
        if want.dtype == np.bool_ or np.issubdtype(want.dtype, np.integer):
            mismatches = float(np.count_nonzero(want != got))
            results.append(OutputComparison(index, got.shape, str(got.dtype),
                                            mismatches, mismatches, mismatches == 0))
            continue
        want64, got64 = want.astype(np.float64), got.astype(np.float64)
        both_nan = np.isnan(want64) & np.isnan(got64)
        same_inf = np.isinf(want64) & (want64 == got64)
        with np.errstate(invalid="ignore"):
            difference = np.where(both_nan | same_inf, 0.0, np.abs(want64 - got64))
        relative = difference / np.maximum(np.abs(want64), np.finfo(np.float64).tiny)
        passed = bool(np.all(difference <= atol + rtol * np.abs(np.nan_to_num(want64))))
        results.append(OutputComparison(
            index, got.shape, str(got.dtype),
            float(difference.max(initial=0.0)), float(relative.max(initial=0.0)), passed))
    return VerifyReport(results, rtol, atol)

"""Command-line tensors in iree-run-module's syntax.

Inputs:  `2x3xf32=1,2,3,4,5,6` (or space separated; one value fills all),
         `f32=2.5` (a scalar), `@x.npy` (a numpy file).
Outputs: printed as `2x3xf32=[1 2 3][4 5 6]`, or saved with `@out.npy`.
"""

from __future__ import annotations

import re
from math import prod
from pathlib import Path

import numpy as np

from ..errors import InputError
from .signature import DTYPES, TensorSpec

# iree-run-module's element type names, beside mlirc's own.
_ALIASES = {"i1": "bool", "ui8": "u8", "si8": "i8", "si32": "i32", "si64": "i64"}
MAX_PRINTED_ELEMENTS = 1024
# Values typed on the command line: larger inputs come from .npy files.
MAX_INPUT_BYTES = 1 << 30


def parse_input(text: str, position: int) -> np.ndarray:
    """One --input value; errors name the input by position (1-based)."""
    shown = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1],
                   text if len(text) < 40 else text[:37] + "...")
    where = f"--input {position} ('{shown}')"
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise InputError(f"{where}: no such file {path}")
        try:
            return np.load(path, allow_pickle=False)
        except Exception as error:
            raise InputError(f"{where}: not a .npy file: {error}") from None
    type_text, equals, values_text = text.partition("=")
    if not equals:
        raise InputError(f"{where}: expected SHAPExTYPE=VALUES (e.g. 2x3xf32=1,2,3,4,5,6) "
                         "or @file.npy")
    *dims, dtype = type_text.split("x")
    dtype = _ALIASES.get(dtype, dtype)
    if dtype not in DTYPES:
        raise InputError(f"{where}: unknown element type '{dtype}'; "
                         f"known: {', '.join(DTYPES)}")
    if not all(re.fullmatch(r"\d+", d) for d in dims):
        raise InputError(f"{where}: bad shape '{'x'.join(dims)}': dimensions are "
                         "non-negative integers")
    shape = tuple(int(d) for d in dims)
    numpy_dtype = np.dtype(DTYPES[dtype].numpy)
    if prod(shape) * numpy_dtype.itemsize > MAX_INPUT_BYTES:
        raise InputError(f"{where}: shape {list(shape)} needs "
                         f"{prod(shape) * numpy_dtype.itemsize / 2**30:.3g} GiB; give a large "
                         "input as @file.npy")
    items = [v for v in re.split(r"[,\s]+", values_text.strip()) if v]
    try:
        if dtype == "bool":
            values = [_parse_bool(v) for v in items]
        else:
            values = [float(v) if DTYPES[dtype].numpy.kind == "f" else int(v) for v in items]
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None
    if numpy_dtype.kind in "iub":
        limits = np.iinfo(numpy_dtype) if numpy_dtype.kind != "b" else None
        outside = [v for v in values if limits and not limits.min <= v <= limits.max]
        if outside:
            raise InputError(f"{where}: {outside[0]} does not fit {dtype} "
                             f"([{limits.min}, {limits.max}])")
    count = prod(shape)
    if len(values) == 1 and count != 1:
        values = values * count
    if len(values) != count:
        raise InputError(f"{where}: shape {list(shape)} holds {count} values, got {len(values)}")
    try:
        return np.array(values, dtype=DTYPES[dtype].numpy).reshape(shape)
    except (ValueError, OverflowError, MemoryError) as error:  # numpy's own size limits
        raise InputError(f"{where}: {error}") from None


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"'{value}' is not a boolean (use 0/1 or true/false)")


def format_result(array: np.ndarray) -> str:
    """`2x3xf32=[1 2 3][4 5 6]`, the way iree-run-module prints a buffer view."""
    spec = TensorSpec(tuple(array.shape), _dtype_name(array.dtype))
    flat = array.reshape(-1)
    elided = flat.size > MAX_PRINTED_ELEMENTS

    def element(value) -> str:
        if array.dtype == np.bool_:
            return "1" if value else "0"
        if array.dtype.kind == "f":
            return f"{float(value):g}"
        return str(int(value))

    def nested(values, shape) -> str:
        if len(shape) <= 1:
            return " ".join(element(v) for v in values)
        step = prod(shape[1:])
        return "".join(f"[{nested(values[i * step:(i + 1) * step], shape[1:])}]"
                       for i in range(shape[0]))

    if elided:
        body = " ".join(element(v) for v in flat[:MAX_PRINTED_ELEMENTS]) + "..."
    else:
        body = nested(list(flat), array.shape)
    return f"{spec}={body}"


def _dtype_name(dtype: np.dtype) -> str:
    from .signature import dtype_of_numpy
    return dtype_of_numpy(dtype).name


def save_output(array: np.ndarray, target: str, position: int) -> Path:
    if not target.startswith("@"):
        raise InputError(f"--output {position} ('{target}'): expected @file.npy")
    path = Path(target[1:])
    try:
        np.save(path, array)
    except OSError as error:
        raise InputError(f"--output {position}: cannot write {path}: "
                         f"{error.strerror or error}") from None
    return path

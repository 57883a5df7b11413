"""Keeping large weights out of LLVM's way.

LLVM takes minutes to compile a module whose globals hold 100 MB of
initializers (ResNet-50). Both native backends instead declare each large
constant global external, so code generation only sees declarations: the JIT
binds each symbol to a 64-byte aligned numpy buffer holding the same bytes;
the AOT library gets them from an assembly file that includes the bytes
(`.incbin`), which the assembler copies as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import ir

# Below this many bytes in total, weights stay inline: nothing to gain.
EXTERNALIZE_ABOVE = 1 << 20
ALIGNMENT = 64


def externalize(module: ir.Module) -> list[tuple[str, np.ndarray]]:
    """Turns large `llvm.mlir.global` constants with resource initializers into
    external declarations; returns (symbol, buffer) pairs to bind in the JIT."""
    candidates = []
    for op in module.body.operations:
        if op.operation.name != "llvm.mlir.global" or "value" not in op.attributes:
            continue
        match = re.match(r"dense_resource<([^>]+)>", str(op.attributes["value"]))
        if match:
            candidates.append((op, match.group(1)))
    if not candidates:
        return []
    text = ir.module_text(module)
    blobs = dict(re.findall(r'^\s*([^\s:"]+): "0x([0-9A-Fa-f]+)"', text, re.MULTILINE))
    total = sum(len(blobs.get(name, "")) // 2 for _, name in candidates)
    if total <= EXTERNALIZE_ABOVE:
        return []
    bound = []
    with module.context:
        external = ir.Attribute.parse("#llvm.linkage<external>")
        for op, resource in candidates:
            if resource not in blobs:
                continue
            data = bytes.fromhex(blobs[resource])[4:]  # after the blob's alignment word
            buffer = aligned_copy(data)
            del op.attributes["value"]
            op.attributes["linkage"] = external
            bound.append((ir.StringAttr(op.attributes["sym_name"]).value, buffer))
    return bound


def aligned_copy(data: bytes) -> np.ndarray:
    raw = np.empty(len(data) + ALIGNMENT, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGNMENT
    buffer = raw[start:start + len(data)]
    buffer[:] = np.frombuffer(data, dtype=np.uint8)
    return buffer


_ASSEMBLY_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def write_assembly(bound: list[tuple[str, np.ndarray]], folder: Path) -> Path:
    """An assembly file defining each (symbol, bytes) as 64-byte aligned
    read-only data, the bytes in binary files beside it; returns its path."""
    lines = ['\t.section .rodata.mlirc_weights,"a"']
    for index, (symbol, buffer) in enumerate(bound):
        if not _ASSEMBLY_SYMBOL.fullmatch(symbol):
            raise ValueError(f"weight symbol {symbol!r} cannot be named in assembly")
        data = folder / f"weights_{index}.bin"
        buffer.tofile(data)
        lines += [f"\t.balign {ALIGNMENT}", f"\t.globl {symbol}",
                  f"\t.type {symbol}, @object", f"\t.size {symbol}, {buffer.size}",
                  f"{symbol}:", f'\t.incbin "{data}"']
    lines.append('\t.section .note.GNU-stack,"",@progbits')  # no executable stack
    path = folder / "weights.s"
    path.write_text("\n".join(lines) + "\n")
    return path

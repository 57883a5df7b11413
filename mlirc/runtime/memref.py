"""numpy arrays as MLIR ranked memref descriptors (the C layout behind
`_mlir_ciface_` functions): {allocated, aligned, offset, sizes[rank], strides[rank]}.

One descriptor layout serves every element type, since the pointers are
untyped; the caller keeps the numpy array alive while the descriptor is used.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np


@functools.cache
def descriptor_type(rank: int) -> type[ctypes.Structure]:
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
              ("offset", ctypes.c_int64)]
    if rank > 0:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRefDescriptor{rank}D", (ctypes.Structure,), {"_fields_": fields})


def data_pointer(array: np.ndarray) -> int:
    """The address of `array`'s first element. Through the buffer protocol
    (about 0.2 us) where the array is writable and not empty, else numpy's
    `ctypes.data` (about 0.75 us): this runs once per argument per call."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError, BufferError):  # read-only, empty or not a simple buffer
        return array.ctypes.data


class PackedArguments:
    """The packed argument list of one entry point, built once and re-pointed
    at each call's arrays: creating the ctypes descriptors took about 7 us of
    a 120 us model call; re-pointing them about 1 us an argument. Sizes and
    strides are rewritten only when an array's shape or strides change."""

    def __init__(self, ranks: list[int]):
        self.descriptors = [descriptor_type(rank)() for rank in ranks]
        self.pointers = [ctypes.pointer(d) for d in self.descriptors]
        slots = [ctypes.pointer(p) for p in self.pointers]
        self.slots = slots
        self.addresses = [ctypes.addressof(d) for d in self.descriptors]
        self.packed = (ctypes.c_void_p * len(slots))(
            *[ctypes.cast(s, ctypes.c_void_p) for s in slots])
        self.layouts: list[tuple | None] = [None] * len(ranks)

    def bind(self, arrays: list[np.ndarray]) -> "PackedArguments":
        """Points the descriptors at `arrays` (C-contiguous, kept alive by the
        caller during the call); the call then takes `packed` (an MLIR
        packed interface) or `addresses` (a C interface)."""
        for index, array in enumerate(arrays):
            descriptor = self.descriptors[index]
            pointer = data_pointer(array)
            descriptor.allocated = pointer
            descriptor.aligned = pointer
            layout = (array.shape, array.strides)
            if layout != self.layouts[index] and array.ndim > 0:
                assert array.flags["C_CONTIGUOUS"], "memref descriptors need contiguous arrays"
                descriptor.sizes[:] = array.shape
                descriptor.strides[:] = [s // array.itemsize for s in array.strides] \
                    if array.size else [0] * array.ndim
                self.layouts[index] = layout
        return self


class CallArguments:
    """One entry point's PackedArguments for each calling thread, so that
    calls from several threads at once each point their own descriptors."""

    def __init__(self):
        self._local = threading.local()

    def bind(self, arrays: list[np.ndarray]) -> PackedArguments:
        packed = getattr(self._local, "packed", None)
        if packed is None or len(packed.descriptors) != len(arrays):
            packed = self._local.packed = PackedArguments([a.ndim for a in arrays])
        return packed.bind(arrays)

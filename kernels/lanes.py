"""Lane arrays from per-key draws, compiled: the layout step of `kernels.init.initial_lanes`.

A sweep draws each distinct (scheme, seed) once, a row of `draws` (keys, width), and its runs take
their key's row times their init_scale, transposed into the kernels' layout (width, lanes). In NumPy
that is a gather, a product and a transposing copy, three passes over the values, the last one strided;
here it is one pass, a block of lanes at a time, each row written in runs of consecutive lanes.
"""
import numpy as np
from numba import njit

from kernels.jit import KERNEL_JIT

_BLOCK = 512  # lanes per pass: 4 KB of float64 per row


@njit(**KERNEL_JIT)
def scaled_columns(draws, codes, scales, out):
    """out[p, j] = draws[codes[j], p] * scales[j], in float64, rounded once to out's dtype."""
    width, lanes = out.shape
    if codes.shape[0] != lanes or scales.shape[0] != lanes or draws.shape[1] < width:
        raise ValueError("scaled_columns: out must be (width, lanes) with a code and a scale per lane")
    # A block of lanes at a time, each row's part of it written in one contiguous run: a lane at a time
    # would write `width` lines a power-of-two stride apart, which share a cache set and evict one another.
    for start in range(0, lanes, _BLOCK):
        stop = min(start + _BLOCK, lanes)
        for p in range(width):
            for j in range(start, stop):
                out[p, j] = draws[codes[j], p] * scales[j]


def spread(draws, codes, scales, dtype):
    """The lanes of `draws` (keys, width), lane j the row codes[j] times scales[j]: (width, lanes) in `dtype`."""
    draws = np.ascontiguousarray(draws, dtype=np.float64)
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    scales = np.ascontiguousarray(scales, dtype=np.float64)
    if codes.size and (codes.min() < 0 or codes.max() >= draws.shape[0]):
        raise ValueError(f"spread: codes must index the {draws.shape[0]} rows of draws")
    out = np.empty((draws.shape[1], codes.shape[0]), dtype=dtype)
    scaled_columns(draws, codes, scales, out)
    return out

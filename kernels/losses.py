"""The losses, in one place: per-sample loss terms and output-layer deltas.

Scalar Numba functions that the lane kernels inline, the CPU's and the GPU's
(`kernels.cuda_kernel`, where numba-cuda compiles them as device functions:
keep them lazily typed, since an explicit signature would stop that); `one`
is 1 in the working precision, so float32 kernels stay in float32. The
conventions are the seed notebooks' (see `kernels.reference`): deltas are
dL/dz at the output, with the sigmoid derivative taken from the activation,
a(1 - a).
"""
import numpy as np
from numba import njit

from kernels.jit import JIT


@njit(**JIT)
def mse_delta(a, y, one):
    """(a - y) a(1 - a): the notebooks' MSE gradient, summed over samples, no 1/N."""
    return (a - y) * (a * (one - a))


@njit(**JIT)
def bce_delta(a, y, eps, one):
    """(-(y / (a + eps)) + (1 - y) / (1 - a + eps)) a(1 - a); a - y when eps = 0."""
    return (-(y / (a + eps)) + (one - y) / (one - a + eps)) * (a * (one - a))


@njit(**JIT)
def mse_delta_slope(a, y, one):
    """d/dz of `mse_delta` at a sigmoid output: a(1 - a) (a(1 - a) + (a - y)(1 - 2a))."""
    s = a * (one - a)
    return s * (s + (a - y) * (one - (one + one) * a))


@njit(**JIT)
def bce_delta_slope(a, y, eps, one):
    """d/dz of `bce_delta`: a(1 - a) (q' a(1 - a) + q (1 - 2a)), q = -(y / (a + eps)) + (1 - y) / (1 - a + eps)
    and q' = y / (a + eps)^2 + (1 - y) / (1 - a + eps)^2."""
    s = a * (one - a)
    q = -(y / (a + eps)) + (one - y) / (one - a + eps)
    dq = y / ((a + eps) * (a + eps)) + (one - y) / ((one - a + eps) * (one - a + eps))
    return s * (dq * s + q * (one - (one + one) * a))


@njit(**JIT)
def bce_term(a, y, eps, one):
    """y log(a + eps) + (1 - y) log(1 - a + eps); the loss is minus their mean."""
    return y * np.log(a + eps) + (one - y) * np.log(one - a + eps)


@njit(**JIT)
def mse_delta_linear(a, y):
    """a - y: the MSE gradient at a linear (identity) output, summed over samples, no 1/N."""
    return a - y

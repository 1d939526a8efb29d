"""The activations, in one place: a = f(z) and f'(z) written from a, for the lane kernels.

Scalar Numba functions that the CPU and GPU kernels inline; `act` is a code
of kernels.vocab.ACTIVATIONS, a compile-time constant where the kernels call
them (kernels/kernel.py compiles one kernel per activation, the GPU one per
model variant), so the branches fold away. Definitions are those of kernels.reference: sigmoid
1 / (1 + exp(-z)), tanh, relu max(z, 0) (NaN passes), identity z; slopes
a(1 - a), 1 - a^2, 1 where a > 0 (else 0), 1.
"""
from numba import njit

from kernels.fastmath import sigmoid, tanh
from kernels.jit import JIT
from kernels.vocab import RELU, SATURATION_Z, SIGMOID, TANH


@njit(**JIT)
def activate(z, act, one):
    """f(z) for activation code `act`; `one` is 1 in the working precision."""
    if act == SIGMOID:
        return sigmoid(z, one)
    if act == TANH:
        return tanh(z, one)
    if act == RELU:
        return (one - one) if z <= 0 else z
    return z


@njit(**JIT)
def slope(a, act, one):
    """f'(z) from a = f(z)."""
    if act == SIGMOID:
        return a * (one - a)
    if act == TANH:
        return one - a * a
    if act == RELU:
        return one if a > 0 else one - one
    return one


@njit(**JIT)
def slope_derivative(a, act, one):
    """f''(z) from a = f(z): a(1 - a)(1 - 2a), -2a(1 - a^2), 0 (ReLU away from its kink, identity). The
    curvature diagnostics' (kernels/hessian.py)."""
    if act == SIGMOID:
        return a * (one - a) * (one - (one + one) * a)
    if act == TANH:
        return -(one + one) * a * (one - a * a)
    return one - one


@njit(**JIT)
def saturates(z, act):
    """A pre-activation of a sigmoid (|z| > 4) or tanh (|z| > 2) unit counts as saturated; other units never."""
    if act == SIGMOID or act == TANH:
        return abs(z) > SATURATION_Z[act]
    return False


@njit(**JIT)
def pre_activation(u, b, s, scaled, bias):
    """z = s u + b: u is the weighted sum, s the parameterisation's factor (skipped when not `scaled`,
    so the standard network computes u + b exactly), b the bias (none without `bias`)."""
    if scaled:
        u = u * s
    if bias:
        u = u + b
    return u

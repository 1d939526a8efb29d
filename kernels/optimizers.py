"""The optimizers and the shuffle rule, in one place, for the CPU and the GPU kernels.

Scalar Numba functions (lazily typed, like `kernels.losses`, so numba-cuda
compiles them as device functions for `kernels.cuda_kernel`). The updates are
those of `kernels.reference` (its docstring writes them out with the order of
operations and the shuffle rule); the tests compare the kernels with it. A
kernel compiles one optimizer in (`opt`, a code of kernels.vocab.OPTIMIZERS,
a constant there, so the other branches fold away); every hyperparameter is
a value per lane.

Per update and lane the kernels first advance the running products
beta1^t and beta2^t and compute the factors that do not depend on the
parameter (`adam_factors`, `decay_factor`): each is one rounding, the same
as the reference's, wherever it is computed.
"""
import math

import numpy as np
from numba import njit

from kernels.jit import JIT
from kernels.vocab import ADAM, ADAMW, GD, NESTEROV

# splitmix64's constants (the shuffle rule of kernels/reference.py)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)


@njit(**JIT)
def uses_first_moment(opt):
    """Adam and AdamW keep m and the products beta1^t, beta2^t."""
    return opt == ADAM or opt == ADAMW


@njit(**JIT)
def adam_factors(lr, beta1_t, beta2_t, one):
    """(lr / (1 - beta1^t), sqrt(1 - beta2^t)): Adam's bias corrections at update t."""
    return lr / (one - beta1_t), math.sqrt(one - beta2_t)


@njit(**JIT)
def decay_factor(lr, wd, one):
    """1 - lr wd: AdamW's shrink of a decaying parameter."""
    return one - lr * wd


@njit(**JIT)
def update(p, g, v, s, opt, decays, lr, mu, beta1, omb1, beta2, omb2, eps, wd, shrink, k, c2):
    """One update of one parameter p with gradient g: returns (p, v, s), v the velocity (gd, nesterov) or
    first moment (adam, adamw), s the second moment (adam, adamw, rmsprop).

    decays: the parameter decays (weight decay != 0, and it is a weight or decay_biases); omb1 = 1 - beta1,
    omb2 = 1 - beta2; shrink = `decay_factor`; k, c2 = `adam_factors` of this update (adam, adamw)."""
    if decays:
        if opt == ADAMW:
            p = p * shrink
        else:
            g = g + wd * p
    if opt == GD or opt == NESTEROV:
        if mu != 0:
            v = mu * v + g
            if opt == NESTEROV:
                p = p - lr * (g + mu * v)
            else:
                p = p - lr * v
        else:
            p = p - lr * g
    elif opt == ADAM or opt == ADAMW:
        v = beta1 * v + omb1 * g
        s = beta2 * s + (omb2 * g) * g
        p = p - (k * v) / (math.sqrt(s) / c2 + eps)
    else:  # rmsprop
        s = beta2 * s + (omb2 * g) * g
        p = p - (lr * g) / (math.sqrt(s) + eps)
    return p, v, s


@njit(**JIT)
def shuffle_into(order, seed, epoch):
    """order[:] = the sample order of epoch `epoch` of a run with seed `seed` (kernels/reference.py's
    `shuffled_order`: Fisher-Yates driven by splitmix64, state (seed << 32) | epoch)."""
    n = order.shape[0]
    for i in range(n):
        order[i] = i
    x = (np.uint64(seed) << _S32) | np.uint64(epoch)
    for i in range(n - 1, 0, -1):
        x = x + _GOLDEN
        z = (x ^ (x >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
        j = z % np.uint64(i + 1)
        t = order[i]
        order[i] = order[j]
        order[j] = t

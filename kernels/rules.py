"""The scalar rules of training, in one place, beside the losses and the activations.

Numba functions shared by the CPU lane kernel (`kernels.kernel`) and the GPU
kernel (`kernels.cuda_kernel`): a CUDA kernel that calls an `@njit` function
gets it compiled as a device function (numba-cuda's test_device_func.py,
test_cpu_dispatcher; not for an `@njit` with an explicit signature), so a
rule changed here changes on both. Definitions are those of
`kernels.reference`.
"""
from numba import njit

from kernels.jit import JIT



@njit(**JIT)
def is_finite(x):
    """x is neither inf nor NaN (x - x is NaN for both)."""
    return (x - x) == 0


@njit(**JIT)
def criterion_holds(loss, max_err, by_loss, tol, margin):
    """The convergence criterion of a state: 'loss' (by_loss) loss <= tol, else
    'margin': every output strictly within margin of its target (max_err < margin).
    Never holds for a non-finite loss."""
    ok = (loss <= tol) if by_loss else (max_err < margin)
    return ok and is_finite(loss)


@njit(**JIT)
def stops(finite, holds, early_stop, e, epochs):
    """Training ends at state e: diverged, converged with early stop, or the last state."""
    return (not finite) or (holds and early_stop) or e == epochs

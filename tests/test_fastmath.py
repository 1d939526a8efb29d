"""Accuracy of the vectorisable exp and sigmoid, in ulp, over the range sigmoid meets."""
import mpmath
import numpy as np
import pytest

from kernels.fastmath import exp_array

F64_TINY, F64_MAX = -708.3964185322641, 709.782712893384  # log(2**-1022), overflow threshold
F32_TINY, F32_MAX = -87.33654, 88.72283

def ulp_error(got, x, dtype):
    with mpmath.workdps(50):
        exact = [mpmath.exp(mpmath.mpf(float(v))) for v in x]
    spacing = np.spacing(np.array([float(e) for e in exact]).astype(dtype)).astype(float)
    return np.array([float(abs(mpmath.mpf(float(g)) - e)) for g, e in zip(got, exact)]) / spacing

@pytest.mark.parametrize("dtype, lo, hi, bound", [
    (np.float64, F64_TINY, F64_MAX, 1.01),
    (np.float32, F32_TINY, F32_MAX, 1.05),
])
def test_exp_within_one_ulp_over_the_normal_range(dtype, lo, hi, bound):
    rng = np.random.default_rng(0)
    x = np.concatenate([
        np.linspace(lo, hi, 3000),                 # the whole range, both ends included
        rng.uniform(-40, 40, 3000),                # where sigmoid's inputs live
        rng.uniform(-1e-3, 1e-3, 300),             # around 0
        lo + rng.uniform(0, 1, 300), hi - rng.uniform(0, 1, 300),   # next to both ends
    ]).astype(dtype)
    got = exp_array(x)
    assert got.dtype == dtype
    err = ulp_error(got, x, dtype)
    assert err.max() <= bound, (err.max(), x[err.argmax()])

@pytest.mark.parametrize("dtype, tiny, big", [(np.float64, F64_TINY, F64_MAX), (np.float32, F32_TINY, F32_MAX)])
def test_exp_ends_and_special_values(dtype, tiny, big):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, big * 1.0001, tiny * 1.0001, -1e30, 1e30], dtype)
    got = exp_array(x)
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[2] == 0.0 and got[3] == 1.0
    assert got[4] == np.inf      # overflow
    assert got[5] == 0.0         # subnormal results are flushed to zero
    assert got[6] == 0.0 and got[7] == np.inf
    # The last normal result and the largest finite one are still accurate.
    edge = np.array([np.nextafter(dtype(tiny), dtype(0)) + 0 * dtype(1), np.nextafter(dtype(big), dtype(0))], dtype)
    assert ulp_error(exp_array(edge), edge, dtype).max() <= 1.05

def test_exp_is_monotone_on_a_fine_grid():
    x = np.linspace(-30, 30, 200001)
    assert np.all(np.diff(exp_array(x)) >= 0)


@pytest.mark.parametrize("dtype, bound", [(np.float64, 4.0), (np.float32, 2.0)])
def test_kernel_sigmoid_matches_the_notebook_formula(dtype, bound):
    """Within a few ulp of 1 / (1 + exp(-z)) in float64 rounded to dtype; 0 and 1 at the ends."""
    from kernels.fastmath import sigmoid_array
    z = np.concatenate([np.linspace(-800, 800, 20001), np.random.default_rng(0).uniform(-40, 40, 20000)])
    z = z.astype(dtype)
    with np.errstate(over="ignore"):
        ref = (1 / (1 + np.exp(-z.astype(np.float64)))).astype(dtype)
    got = sigmoid_array(z)
    normal = ref > np.finfo(dtype).tiny
    err = np.abs(got[normal].astype(float) - ref[normal]) / np.spacing(ref[normal]).astype(float)
    assert err.max() <= bound
    assert np.all(got[~normal] <= np.finfo(dtype).tiny)  # where NumPy gives a subnormal or 0
    assert np.all(got[z > 40] == 1.0) and np.all(got[z < -720] == 0.0)
    special = sigmoid_array(np.array([np.nan, np.inf, -np.inf], dtype))
    assert np.isnan(special[0]) and special[1] == 1.0 and special[2] == 0.0


@pytest.mark.parametrize("dtype, lo, hi", [(np.float64, -700.0, 40.0), (np.float32, -80.0, 18.0)])
def test_sigmoid_is_one_over_one_plus_the_kernels_exp_bit_for_bit(dtype, lo, hi):
    """sigmoid reduces -z with the signs folded into exp's constants (kernels/fastmath.py, `_reduced_expm1_64`'s
    `sign`): its bits are those of 1 / (1 + exp(-z)) with the kernel's exp of the negated z, wherever neither
    clamps (-z in [-hi, -lo])."""
    from numba import njit

    from kernels.fastmath import sigmoid_array, vexp

    @njit
    def through_exp(z):
        out = np.empty_like(z)
        one = z.dtype.type(1.0)
        for j in range(z.shape[0]):
            out[j] = one / (one + vexp(-z[j]))
        return out

    rng = np.random.default_rng(0)
    z = np.concatenate([np.linspace(lo, hi, 200001), rng.uniform(lo, hi, 100000), rng.normal(0, 1, 100000),
                        rng.normal(0, 1e-4, 10000), [0.0, -0.0]]).astype(dtype)
    z = z[(z >= lo) & (z <= hi)]
    np.testing.assert_array_equal(sigmoid_array(z).view(np.uint8), through_exp(z).view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_kernels_opaque_one_gives_the_same_bits(dtype):
    """sigmoid(z, one) and tanh(z, one), with `one` an `opaque` 1 as the kernel holds it, are sigmoid(z) and
    tanh(z) bit for bit: every constant times 1 is itself (kernels/fastmath.py)."""
    from numba import njit

    from kernels.fastmath import opaque, sigmoid, tanh

    @njit
    def both(z, one_source):
        one = opaque(one_source[0])
        out = np.empty((4, z.shape[0]), z.dtype)
        for j in range(z.shape[0]):
            out[0, j] = sigmoid(z[j], one)
            out[1, j] = sigmoid(z[j])
            out[2, j] = tanh(z[j], one)
            out[3, j] = tanh(z[j])
        return out

    rng = np.random.default_rng(0)
    z = np.concatenate([np.linspace(-800, 800, 4001), rng.uniform(-40, 40, 4000), rng.normal(0, 1e-3, 1000),
                        [0.0, -0.0, np.nan, np.inf, -np.inf]]).astype(dtype)
    out = both(z, np.ones(1, dtype))
    np.testing.assert_array_equal(out[0].view(np.uint8), out[1].view(np.uint8))
    np.testing.assert_array_equal(out[2].view(np.uint8), out[3].view(np.uint8))
    near = z[1998:2003]  # -0.8 .. 0.8: from Python, opaque is the identity and sigmoid NumPy's formula
    np.testing.assert_array_equal(both.py_func(near, np.ones(1, dtype))[0], 1 / (1 + np.exp(-near)))


def test_opaque_is_an_empty_assembly_block_the_optimiser_cannot_fold():
    """On x86-64 and AArch64 the compiled `opaque` is inline assembly, so LLVM cannot fold 1 x c back into
    the constant c; elsewhere it is the identity (slower loops, the same results)."""
    from numba import njit

    from kernels.fastmath import _OPAQUE_ASM, opaque

    @njit
    def f(x):
        return opaque(x) * 2.5

    assert f(2.0) == 5.0 and opaque(3.0) == 3.0
    ir_text = next(iter(f.inspect_llvm().values()))
    if _OPAQUE_ASM is None:
        pytest.skip("no inline assembly for this architecture")
    assert f'asm "", "{_OPAQUE_ASM}"' in ir_text and "fmul double" in ir_text

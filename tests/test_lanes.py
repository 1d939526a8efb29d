"""The compiled layout step of initial_lanes against NumPy's gather, product and transpose."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.lanes import spread


def numpy_spread(draws, codes, scales, dtype):
    return np.ascontiguousarray(np.take(draws, codes, axis=0).T * scales, dtype=dtype)


@settings(max_examples=40, deadline=None)
@given(keys=st.integers(1, 40), width=st.integers(1, 40), lanes=st.integers(0, 1500), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_spread_is_numpys_gather_times_scale_bitwise(keys, width, lanes, seed, dtype):
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((keys, width)) * 10.0 ** rng.uniform(-3, 3, (keys, width))
    codes = rng.integers(0, keys, lanes)
    scales = 10.0 ** rng.uniform(-4, 4, lanes)
    got = spread(draws, codes, scales, dtype)
    want = numpy_spread(draws, codes, scales, dtype)
    assert got.shape == (width, lanes) and got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_spread_crosses_block_boundaries_and_keeps_lane_order():
    draws = np.arange(3 * 5, dtype=np.float64).reshape(3, 5)
    codes = np.arange(1029) % 3  # two full blocks of 512 lanes and a partial one
    out = spread(draws, codes, np.ones(1029), np.float64)
    np.testing.assert_array_equal(out[:, 1028], draws[1028 % 3])
    np.testing.assert_array_equal(out[2], draws[codes, 2])


@pytest.mark.parametrize("codes", [[0, 3], [-1, 0]])
def test_spread_refuses_codes_outside_the_draws(codes):
    with pytest.raises(ValueError, match="codes must index the 3 rows of draws"):
        spread(np.zeros((3, 2)), np.array(codes), np.ones(2), np.float64)

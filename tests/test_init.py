"""Initial weights: the notebooks' draws reproduced, paired directions, lane stacking."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.init import SCHEMES, initial_weights, stack_lanes
from tests import notebooks as nb

NEW_SCHEMES = ("normal", "uniform", "xavier")


def test_numpy_legacy_normal_is_np_random_seed_randn():
    W1, b1, W2, b2 = initial_weights("numpy-legacy-normal", 42, 2, 4)
    rs = np.random.RandomState(42)
    np.testing.assert_array_equal(W1, rs.randn(2, 4))
    np.testing.assert_array_equal(W2, rs.randn(4, 1)[:, 0])
    np.testing.assert_array_equal(b1, np.zeros(4))
    assert b2.shape == () and b2 == 0.0
    ref = nb.legacy_normal(42)
    for got, want in zip((W1, b1, W2, b2), ref):
        np.testing.assert_array_equal(got, want)


def test_numpy_legacy_normal_scaled_like_notebook_000():
    # notebook 000: np.random.seed(0); W1 = randn(2, 4) * 10; W2 = randn(4, 1) * 10
    W1, b1, W2, b2 = initial_weights("numpy-legacy-normal", 0, 2, 4, init_scale=10.0)
    rs = np.random.RandomState(0)
    np.testing.assert_array_equal(W1, rs.randn(2, 4) * 10)
    np.testing.assert_array_equal(W2, (rs.randn(4, 1) * 10)[:, 0])


def test_numpy_legacy_uniform_is_notebook_001_column_layout_converted():
    W1, b1, W2, b2 = initial_weights("numpy-legacy-uniform", 42, 2, 2)
    rs = np.random.RandomState(42)
    W1c, b1c, W2c, b2c = rs.rand(2, 2), rs.rand(2, 1), rs.rand(1, 2), rs.rand(1, 1)
    assert W1[0, 0] == np.random.RandomState(42).rand(2, 2)[0, 0]
    np.testing.assert_array_equal(W1, W1c.T)
    np.testing.assert_array_equal(b1, b1c[:, 0])
    np.testing.assert_array_equal(W2, W2c[0])
    assert b2 == b2c[0, 0]
    for got, want in zip((W1, b1, W2, b2), nb.legacy_uniform_001()):
        np.testing.assert_array_equal(got, want)


def test_numpy_legacy_uniform_scales_weights_not_drawn_biases():
    W1, b1, W2, b2 = initial_weights("numpy-legacy-uniform", 7, 3, 5)
    S1, c1, S2, c2 = initial_weights("numpy-legacy-uniform", 7, 3, 5, init_scale=4.0, bias_init=9.0)
    np.testing.assert_array_equal(S1, 4.0 * W1)
    np.testing.assert_array_equal(S2, 4.0 * W2)
    np.testing.assert_array_equal(c1, b1)
    assert c2 == b2


def test_legacy_draws_leave_the_global_random_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for scheme in SCHEMES:
        initial_weights(scheme, 5, 2, 4)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_generator_schemes_draw_from_the_documented_seed_sequence():
    for code, scheme in enumerate(NEW_SCHEMES, start=1):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(11 + code * 2**32 + 3 * 2**40 + 5 * 2**48)))
        W1, b1, W2, b2 = initial_weights(scheme, 11, 3, 5)
        if scheme == "normal":
            np.testing.assert_array_equal(W1, rng.standard_normal((3, 5)))
            np.testing.assert_array_equal(W2, rng.standard_normal(5))
        else:
            a1, a2 = (1.0, 1.0) if scheme == "uniform" else (np.sqrt(6 / 8), np.sqrt(6 / 6))
            np.testing.assert_array_equal(W1, rng.uniform(-a1, a1, (3, 5)))
            np.testing.assert_array_equal(W2, rng.uniform(-a2, a2, 5))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_seed_same_direction_at_every_scale(scheme, dtype):
    a = initial_weights(scheme, 3, 2, 4, init_scale=2.0, dtype=dtype)
    b = initial_weights(scheme, 3, 2, 4, init_scale=0.5, dtype=dtype)
    for k in (0, 2):  # W1, W2: exactly proportional (scales are powers of two)
        np.testing.assert_array_equal(a[k] / 2.0, b[k] / 0.5)
        assert np.all(a[k] != 0)
    c = initial_weights(scheme, 3, 2, 4, init_scale=0.3, dtype=dtype)
    for k in (0, 2):  # any scale: the same direction up to one rounding
        np.testing.assert_allclose(c[k] / 0.3, b[k] / 0.5, rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_draw_depends_on_seed_scheme_and_shapes_only(scheme):
    base = initial_weights(scheme, 9, 2, 4)
    again = initial_weights(scheme, 9, 2, 4, bias_init=0.0)
    for x, y in zip(base, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(initial_weights(scheme, 10, 2, 4)[0], base[0])
    # float32 is the float64 draw rounded once
    f32 = initial_weights(scheme, 9, 2, 4, dtype=np.float32)
    for x, y in zip(f32, base):
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, y.astype(np.float32))


def test_schemes_differ_from_each_other_for_one_seed():
    draws = [initial_weights(s, 1, 2, 4)[0] for s in SCHEMES]
    for i in range(len(draws)):
        for j in range(i):
            assert not np.array_equal(draws[i], draws[j]), (SCHEMES[i], SCHEMES[j])


@pytest.mark.parametrize("scheme", NEW_SCHEMES + ("numpy-legacy-normal",))
def test_biases_are_bias_init(scheme):
    W1, b1, W2, b2 = initial_weights(scheme, 4, 3, 6, bias_init=-0.25)
    np.testing.assert_array_equal(b1, np.full(6, -0.25))
    assert b2 == -0.25


def test_xavier_and_uniform_bounds():
    D, H, scale = 5, 7, 3.0
    W1, _, W2, _ = initial_weights("xavier", 0, D, H, init_scale=scale)
    assert np.abs(W1).max() <= scale * np.sqrt(6 / (D + H))
    assert np.abs(W2).max() <= scale * np.sqrt(6 / (H + 1))
    W1, _, W2, _ = initial_weights("uniform", 0, 8, 64, init_scale=scale)
    assert np.abs(W1).max() <= scale and np.abs(W1).max() > 0.9 * scale  # fills the interval


@pytest.mark.parametrize("scheme", SCHEMES)
def test_shapes_dtypes_and_layout(scheme):
    W1, b1, W2, b2 = initial_weights(scheme, 0, 3, 5, dtype=np.float32)
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((3, 5), (5,), (5,), ())
    for a in (W1, b1, W2, b2):
        assert a.dtype == np.float32 and a.flags.c_contiguous


@pytest.mark.parametrize("kwargs, message", [
    (dict(scheme="gaussian"), "unknown init scheme"),
    (dict(seed=-1), "seed"),
    (dict(seed=2**32), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(hidden=0), "hidden"),
    (dict(init_scale=0.0), "init_scale"),
    (dict(init_scale=float("nan")), "init_scale"),
    (dict(bias_init=float("inf")), "bias_init"),
    (dict(dtype=np.float16), "dtype"),
])
def test_bad_arguments(kwargs, message):
    args = dict(scheme="normal", seed=0, n_inputs=2, hidden=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        initial_weights(args.pop("scheme"), args.pop("seed"), args.pop("n_inputs"), args.pop("hidden"), **args)


def test_stack_lanes_puts_networks_in_the_last_axis():
    nets = [initial_weights("normal", s, 2, 4, init_scale=s + 1.0, bias_init=s) for s in range(5)]
    W1, b1, W2, b2 = stack_lanes(nets)
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((2, 4, 5), (4, 5), (4, 5), (5,))
    for a in (W1, b1, W2, b2):
        assert a.flags.c_contiguous and a.flags.writeable and a.dtype == np.float64
    for j, (w1, c1, w2, c2) in enumerate(nets):
        np.testing.assert_array_equal(W1[..., j], w1)
        np.testing.assert_array_equal(b1[..., j], c1)
        np.testing.assert_array_equal(W2[..., j], w2)
        assert b2[j] == c2
    W1[0, 0, 0] = 99.0  # a copy: the networks are untouched
    assert nets[0][0][0, 0] != 99.0


def test_stack_lanes_refuses_mixed_shapes_dtypes_and_nothing():
    a = initial_weights("normal", 0, 2, 4)
    with pytest.raises(ValueError, match="network 1: W1"):
        stack_lanes([a, initial_weights("normal", 0, 2, 3)])
    with pytest.raises(ValueError, match="network 1"):
        stack_lanes([a, initial_weights("normal", 0, 2, 4, dtype=np.float32)])
    with pytest.raises(ValueError, match="at least one"):
        stack_lanes([])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initial_lanes_equal_initial_weights_lane_by_lane_bitwise(dtype):
    from kernels.init import initial_lanes

    schemes = ["normal", "uniform", "xavier", "numpy-legacy-normal", "numpy-legacy-uniform", "normal", "normal"]
    seeds = [3, 3, 4, 42, 42, 3, 5]
    scales = [0.5, 2.0, 1.0, 10.0, 1.0, 0.1, 3.0]
    biases = [0.0, 0.25, -1.0, 0.0, 0.5, 0.0, 0.1]
    W1, b1, W2, b2 = initial_lanes(schemes, seeds, scales, biases, 3, 5, dtype)
    assert W1.shape == (3, 5, 7) and W1.dtype == dtype and W1.flags.c_contiguous
    for j in range(7):
        w = initial_weights(schemes[j], seeds[j], 3, 5, scales[j], biases[j], dtype)
        for got, want in zip((W1[..., j], b1[..., j], W2[..., j], b2[j]), w):
            np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- many seeds at once

@settings(max_examples=40)
@given(st.integers(1, 8), st.integers(1, 64),
       st.lists(st.tuples(st.sampled_from(["normal", "uniform", "xavier", "numpy-legacy-normal"]),
                          st.sampled_from([0, 1, 2, 7, 2**31, 2**32 - 1])), min_size=1, max_size=12))
def test_initial_lanes_equal_initial_weights_for_random_shapes_schemes_and_seeds(D, H, lanes):
    from kernels.init import initial_lanes

    schemes, seeds = zip(*lanes)
    scales = np.linspace(0.1, 3.0, len(lanes))
    W1, b1, W2, b2 = initial_lanes(schemes, seeds, scales, np.zeros(len(lanes)), D, H)
    for j, (scheme, seed) in enumerate(lanes):
        w1, c1, w2, c2 = initial_weights(scheme, seed, D, H, scales[j])
        np.testing.assert_array_equal(W1[..., j], w1)
        np.testing.assert_array_equal(W2[..., j], w2)
        np.testing.assert_array_equal(b1[..., j], c1)
        assert b2[j] == c2


def assert_lanes_are_initial_weights(lanes, schemes, seeds, scales, biases, D, H, dtype):
    W1, b1, W2, b2 = lanes
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((D, H, len(seeds)), (H, len(seeds)), (H, len(seeds)),
                                                        (len(seeds),))
    for a in lanes:
        assert a.dtype == dtype and a.flags.c_contiguous
    for j, (scheme, seed, scale, bias) in enumerate(zip(schemes, seeds, scales, biases)):
        want = initial_weights(scheme, seed, D, H, scale, "draw" if np.isnan(bias) else bias, dtype)
        for got, w in zip((W1[..., j], b1[..., j], W2[..., j], b2[j]), want):
            np.testing.assert_array_equal(got, w, strict=True)


@pytest.mark.parametrize("scheme", NEW_SCHEMES)
@pytest.mark.parametrize("bias", [0.25, float("nan"), "mixed"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initial_lanes_draw_the_fast_schemes_bitwise_with_repeated_seeds(scheme, bias, dtype):
    from kernels.init import initial_lanes

    D, H = 3, 6
    seeds = [5, 0, 5, 2**32 - 1, 0, 5, 77, 2**31]  # repeats in one call: one draw, several scales
    scales = [0.5, 1.0, 2.0, 0.3, 1.5, 1.0, 4.0, 0.01]
    biases = [bias] * len(seeds) if bias != "mixed" else [np.nan, 0.0, 0.5, np.nan, np.nan, -1.0, 0.0, np.nan]
    lanes = initial_lanes([scheme] * len(seeds), seeds, scales, biases, D, H, dtype)
    assert_lanes_are_initial_weights(lanes, [scheme] * len(seeds), seeds, scales, biases, D, H, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initial_lanes_equal_initial_weights_for_many_seeds_of_every_scheme(dtype):
    from kernels.init import initial_lanes

    rs = np.random.default_rng(4)
    n = 600
    schemes = rs.choice(SCHEMES, n).tolist()
    seeds = rs.integers(0, 2**32, n).tolist()
    scales = rs.uniform(0.1, 3.0, n)
    biases = np.where(rs.random(n) < 0.5, np.nan, rs.normal(size=n))
    lanes = initial_lanes(schemes, seeds, scales, biases, 2, 4, dtype)
    assert_lanes_are_initial_weights(lanes, schemes, seeds, scales, biases, 2, 4, dtype)


@settings(max_examples=40)
@given(st.integers(1, 8), st.integers(1, 64), st.sampled_from([np.float64, np.float32]),
       st.lists(st.tuples(st.sampled_from(SCHEMES), st.sampled_from([0, 1, 2, 7, 2**31, 2**32 - 1]),
                          st.sampled_from([0.0, -0.5, float("nan")])), min_size=1, max_size=12))
def test_initial_lanes_equal_initial_weights_with_drawn_biases_and_dtypes(D, H, dtype, lanes):
    from kernels.init import initial_lanes

    schemes, seeds, biases = zip(*lanes)
    scales = np.linspace(0.1, 3.0, len(lanes))
    got = initial_lanes(schemes, seeds, scales, biases, D, H, dtype)
    assert_lanes_are_initial_weights(got, schemes, seeds, scales, biases, D, H, dtype)


def test_initial_lanes_are_new_writeable_arrays():
    from kernels.init import initial_lanes

    biases = np.array([0.5, 0.25])
    biases.flags.writeable = False
    for bias_inits in (biases, np.array([0.5, np.nan])):
        lanes = initial_lanes(["normal", "uniform"], [1, 2], np.ones(2), bias_inits, 2, 4)
        for a in lanes:
            assert a.flags.writeable and a.flags.c_contiguous
            assert not np.shares_memory(a, bias_inits)


@pytest.mark.parametrize("schemes, seeds, needle", [
    (["normal", "gaussian"], [0, 1], "unknown init scheme 'gaussian'"),
    (["normal"], [-1], r"seed must be an integer in \[0, 2\*\*32\), got -1"),
    (["normal"], [2**32], r"seed must be an integer in \[0, 2\*\*32\), got 4294967296"),
    (["normal"], [1.5], r"got 1.5"),
    (["normal"], [True], r"got True"),
])
def test_initial_lanes_refuses_bad_schemes_and_seeds(schemes, seeds, needle):
    from kernels.init import initial_lanes

    with pytest.raises(ValueError, match=needle):
        initial_lanes(schemes, seeds, np.ones(len(seeds)), np.zeros(len(seeds)), 2, 4)

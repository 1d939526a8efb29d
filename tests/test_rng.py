"""kernels.rng: NumPy's SeedSequence -> PCG64 -> Generator streams, compiled, bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba.np.random import _constants as ziggurat

from kernels import rng
from kernels.init import seed_entropy

EDGES = [0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**48 + 12345, 2**63, 2**64 - 2, 2**64 - 1]
entropy = st.integers(0, 2**64 - 1)


def generator(e):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(e)))


def assert_bitwise(got, want):
    np.testing.assert_array_equal(got, want, strict=True)
    assert got.tobytes() == want.tobytes()  # also the signs of zeros


def entropies(values):
    return np.array(values, dtype=np.uint64)


def numpy_state(e):
    s = np.random.PCG64(np.random.SeedSequence(e)).state["state"]
    return s["state"], s["inc"]


def compiled_states(values):
    out = np.empty((len(values), 4), np.uint64)
    rng.pcg64_seed(entropies(values), out)
    return [(int(a) << 64 | int(b), int(c) << 64 | int(d)) for a, b, c, d in out.tolist()]


def test_seeding_is_pcg64_of_seedsequence_at_the_edges_and_for_many_entropies():
    values = EDGES + np.random.default_rng(1).integers(0, 2**64, 2000, dtype=np.uint64, endpoint=False).tolist()
    assert compiled_states(values) == [numpy_state(e) for e in values]


@settings(max_examples=100)
@given(st.lists(entropy, min_size=0, max_size=20))
def test_seeding_is_pcg64_of_seedsequence(values):
    assert compiled_states(values) == [numpy_state(e) for e in values]


@settings(max_examples=50)
@given(st.lists(entropy, min_size=1, max_size=8), st.integers(0, 300))
def test_rows_are_the_generators_draws(values, width):
    normal, unit = np.empty((len(values), width)), np.empty((len(values), width))
    rng.normal_rows(entropies(values), normal)
    rng.uniform01_rows(entropies(values), unit)
    for e, n, u in zip(values, normal, unit):
        assert_bitwise(n, generator(e).standard_normal(width))
        assert_bitwise(u, generator(e).random(width))


def raw_draws_used(e, width):
    """How many uint64 NumPy's standard_normal(width) takes from PCG64(SeedSequence(e))."""
    g = generator(e)
    g.standard_normal(width)
    after, bits = g.bit_generator.state["state"]["state"], np.random.PCG64(np.random.SeedSequence(e))
    bits.advance(width)
    used = width
    while bits.state["state"]["state"] != after:
        bits.advance(1)
        used += 1
    return used


def test_normal_rows_over_a_million_draws_through_every_branch_of_the_ziggurat():
    values = np.random.default_rng(2).integers(2**32, 2**64, 2000, dtype=np.uint64, endpoint=False)
    width = 500
    out = np.empty((values.size, width))
    rng.normal_rows(values, out)
    extra = 0
    for e, row in zip(values.tolist(), out):
        assert_bitwise(row, generator(e).standard_normal(width))
        extra += raw_draws_used(e, width) - width
    # Draws beyond one per value: wedge tests (1), rejections (1 each), tail attempts (2): ~2% of 10**6.
    assert extra > 10000
    # |x| > ziggurat_nor_r comes only from the tail: ~2.6e-4 of the values.
    assert np.count_nonzero(np.abs(out) > ziggurat.ziggurat_nor_r) > 100


# Seeds of scheme normal at D=2, H=4 whose first value leaves the fast path, found by scanning seeds with
# NumPy: (seed, branch, uint64 draws NumPy takes for the first value). Checked against NumPy below.
FIRST_VALUE_BRANCHES = [
    (27, "wedge", 2),  # wedge test, accepted
    (184, "wedge", 3),  # wedge test rejected, next draw inside its rectangle
    (667, "wedge", 4),  # wedge test rejected, then a wedge test accepted
    (1223, "tail", 3),  # tail, accepted at the first attempt
    (83280, "tail", 5),  # tail, second attempt
    (89163, "tail", 7),  # tail, third attempt
]


@pytest.mark.parametrize("seed, branch, used", FIRST_VALUE_BRANCHES)
def test_normal_rows_through_each_branch_of_the_ziggurat(seed, branch, used):
    e = seed_entropy(seed, "normal", 2, 4)
    first = int(np.random.PCG64(np.random.SeedSequence(e)).random_raw())
    layer, rabs = first & 0xFF, (first >> 9) & (2**52 - 1)
    assert rabs >= int(ziggurat.ki_double[layer])  # outside the layer's rectangle
    assert (layer == 0) == (branch == "tail")
    assert raw_draws_used(e, 1) == used
    out = np.empty((1, 64))
    rng.normal_rows(entropies([e]), out)
    assert_bitwise(out[0], generator(e).standard_normal(64))
    assert (abs(out[0, 0]) > ziggurat.ziggurat_nor_r) == (branch == "tail")


def test_uniform01_rows_are_random_and_give_uniform_as_numpy_rounds_it():
    values = np.random.default_rng(3).integers(2**32, 2**64, 1000, dtype=np.uint64, endpoint=False)
    out = np.empty((values.size, 200))
    rng.uniform01_rows(values, out)
    for e, row in zip(values.tolist(), out):
        assert_bitwise(row, generator(e).random(200))
    for a in (1.0, np.sqrt(6 / 9), 0.1):
        scaled = -a + (a - -a) * out[:100]  # Generator.uniform(low, high): low + (high - low) * random()
        for e, row in zip(values.tolist(), scaled):
            assert_bitwise(row, generator(e).uniform(-a, a, 200))


def test_rows_refuse_a_mismatched_out():
    for f, out in ((rng.normal_rows, np.empty((3, 5))), (rng.uniform01_rows, np.empty((3, 5))),
                   (rng.pcg64_seed, np.empty((2, 3), np.uint64))):
        with pytest.raises(ValueError, match="out"):
            f(entropies([2**32, 2**33]), out)


def test_entry_points_release_the_gil():
    for f in (rng.pcg64_seed, rng.normal_rows, rng.uniform01_rows):
        assert f.targetoptions.get("nogil")


def test_a_numba_without_the_ziggurat_tables_is_a_clear_import_error(monkeypatch):
    import importlib.util
    import sys

    import numba.np.random

    monkeypatch.delattr(numba.np.random, "_constants", raising=False)
    monkeypatch.setitem(sys.modules, "numba.np.random._constants", None)
    spec = importlib.util.spec_from_file_location("kernels_rng_without_tables", rng.__file__)
    with pytest.raises(ImportError, match="ziggurat tables from numba.np.random._constants"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))

"""The CUDA kernel (`kernels.cuda.train_cuda`) against the NumPy reference, the CPU kernels,
the seed notebooks and itself.

These run in numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless
it is already set): the kernel's own code, run in Python threads on the CPU, one per GPU
thread, calling the same `@njit` losses and rules as on a GPU. The simulator is slow, so
batches are small (a few lanes, at most a few hundred epochs, but the notebooks').
On a GPU machine, `NUMBA_ENABLE_CUDASIM=0 python -m pytest tests/test_cuda.py` runs the
same tests on the device; there exp is libdevice's and multiply-adds are fused, and the
tolerances below allow for that (they scale with each lane's own sensitivity to a
one-ulp change, as in tests/test_kernel.py).
"""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from kernels import train
from kernels.batch import Variant
from kernels.cuda import cuda_available, simulated, train_cuda
from kernels.vocab import MAX_SAMPLES
from tests import notebooks as nb
from tests.test_kernel import (EXACT, STATS, _same_results_without_outputs, check_early_stop, check_notebook_000,
                               check_notebook_001, check_notebook_002, compare, compare_float32, lane, lanes, problems,
                               run_batch)

REPO = Path(__file__).resolve().parent.parent
AVAILABLE, WHY = cuda_available()
needs_cuda = pytest.mark.skipif(not AVAILABLE, reason=f"no CUDA: {WHY}")
ON_SIMULATOR = AVAILABLE and simulated()
# In the simulator the kernel's float arithmetic is NumPy scalars' in threads that np.errstate does not reach.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:kernels.cuda_kernel")


run_gpu = functools.partial(run_batch, train_fn=train_cuda)
run_cpu = run_batch


def xor_mixed(n=16, seed=0):
    """XOR nets with every hyperparameter varying across lanes; the last lane diverges."""
    rng = np.random.default_rng(seed)
    nets, hyper = [], []
    for j in range(n):
        scale = (0.5, 1.0, 2.0, 4.0)[j % 4]
        nets.append((rng.standard_normal((2, 4)) * scale, rng.standard_normal(4) * 0.1,
                     rng.standard_normal(4) * scale, 0.1 * rng.standard_normal()))
        hyper.append(dict(lr=(0.5, 1.0, 2.0)[j % 3], loss=("mse", "bce")[j % 2], bce_eps=1e-8,
                          momentum=(0.0, 0.0, 0.5, 0.9)[(j // 2) % 4],
                          criterion=("margin", "loss")[(j // 4) % 2], margin=0.4, tol=0.05,
                          early_stop=bool((j // 8) % 2)))
    nets[-1] = tuple(p * 1000.0 for p in nets[-1][:3]) + (0.0,)
    hyper[-1] = dict(hyper[-1], loss="bce", bce_eps=0.0)  # log(0) at once: diverged at state 0
    return nb.XOR_X, nb.XOR_Y, nets, hyper


# --- against the NumPy reference ------------------------------------------------------------

@needs_cuda
@settings(max_examples=15)
@given(problems(max_lanes=4))
def test_float64_matches_reference(problem):
    """Lane by lane against the float64 reference, as for the CPU kernel (`compare`): rtol 1e-8,
    or 4x the change that one-ulp probes (every exp, the initial weights, the order of the
    sums over samples) make in the reference, which measures how far each case's dynamics
    amplify rounding differences (exp here is libm's in the simulator, libdevice's on a GPU;
    the reference uses NumPy's); chaotic lanes only by their integer statistics."""
    with np.errstate(all="ignore"):
        r, w = run_gpu(*problem, np.float64)
        compare(r, w, *problem, rtol=1e-8, atol=1e-12)


@needs_cuda
@settings(max_examples=10)
@given(problems(max_lanes=4))
def test_float32_is_as_accurate_as_float32_numpy(problem):
    """float32 against the float64 reference within 10x the error of float32 NumPy (see
    `tests.test_kernel.test_float32_kernel_is_as_accurate_as_float32_numpy`)."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False, criterion="loss", tol=1e-12) for h in hyper]
    with np.errstate(all="ignore"):
        r, w = run_gpu(X, Y, nets, hyper, epochs, ck, np.float32)
        compare_float32(r, w, X, Y, nets, hyper, epochs, ck)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_other_shape_against_reference(dtype):
    """D=3, H=7, N=5 with real-valued inputs (no zeros to skip), every loss, criterion and momentum."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-2, 2, (5, 3))
    Y = rng.uniform(0, 1, 5)
    nets = [(rng.standard_normal((3, 7)), rng.standard_normal(7), rng.standard_normal(7), 0.3) for _ in range(4)]
    hyper = [dict(lr=0.2, loss=loss, bce_eps=1e-8, momentum=mom, criterion=crit, margin=0.3, tol=0.02,
                  early_stop=False)
             for loss, mom, crit in (("mse", 0.0, "margin"), ("bce", 0.0, "loss"), ("mse", 0.9, "loss"),
                                     ("bce", 0.5, "margin"))]
    ck = [0, 3, 40, 80]
    if dtype == np.float64:
        r, w = run_gpu(X, Y, nets, hyper, 80, ck, dtype)
        compare(r, w, X, Y, nets, hyper, 80, ck, rtol=1e-8, atol=1e-12)
    else:
        hyper = [dict(h, criterion="loss", tol=1e-12) for h in hyper]
        r, w = run_gpu(X, Y, nets, hyper, 80, ck, dtype)
        compare_float32(r, w, X, Y, nets, hyper, 80, ck)
    assert r.outputs.shape == (5, 4) and r.checkpoint_loss.shape == (4, 4)


# --- against the CPU kernels ------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_matches_cpu_kernel_lane_by_lane(dtype, rtol):
    """A mixed batch (both losses and criteria, momentum, early stop, a diverging lane) on the
    GPU and on the CPU. Integer statistics and NaN positions agree exactly; continuous ones to
    rtol (weights relative to the largest of their array): the two differ only in their exp
    (and, on a GPU, fused multiply-adds), within an ulp or two per operation, which 300
    epochs amplify on these networks to ~1e-14 in float64 and ~2e-5 in float32 (measured in
    the simulator; the bounds leave a margin of 100 or more for the GPU's own roundings)."""
    X, Y, nets, hyper = xor_mixed()
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 300, 6, dtype)
        c, wc = run_cpu(X, Y, nets, hyper, 300, 6, dtype)
    for k in EXACT:
        np.testing.assert_array_equal(getattr(g, k), getattr(c, k), err_msg=k)
    assert g.diverged[-1] and g.epochs_run[-1] == 0 and not g.diverged[:-1].any()
    assert g.converged.any() and not g.converged.all()
    np.testing.assert_array_equal(g.checkpoint_epochs, c.checkpoint_epochs)
    for k in STATS + ["outputs", "checkpoint_loss"]:
        np.testing.assert_allclose(getattr(g, k), getattr(c, k), rtol=rtol, atol=rtol * 1e-3, err_msg=k)
    for p, q in zip(wg, wc):
        assert p.dtype == dtype
        np.testing.assert_allclose(p[..., :-1], q[..., :-1], rtol=0, atol=rtol * np.abs(q[..., :-1]).max())


@needs_cuda
def test_lane_of_a_mixed_batch_equals_the_lane_alone():
    """Each lane's result depends on that lane only: bitwise in the simulator. On a GPU a lane
    alone may run a variant compiled without momentum or BCE code, whose fused multiply-adds
    could in principle be contracted differently: there 1e-12 relative."""
    X, Y, nets, hyper = xor_mixed(8, seed=1)
    with np.errstate(all="ignore"):
        batch, wb = run_gpu(X, Y, nets, hyper, 60, [0, 7, 60], np.float64)
        for j in range(len(nets)):
            alone, wa = run_gpu(X, Y, nets[j:j + 1], hyper[j:j + 1], 60, [0, 7, 60], np.float64)
            a, b = lane(batch, j), lane(alone, 0)
            for k in a:
                if ON_SIMULATOR or k in EXACT:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
                else:
                    np.testing.assert_allclose(a[k], b[k], rtol=1e-12, err_msg=k)
            for p, q in zip(wb, wa):
                np.testing.assert_allclose(p[..., j], q[..., 0], rtol=0 if ON_SIMULATOR else 1e-12)


@needs_cuda
def test_threads_per_block_changes_nothing():
    X, Y, nets, hyper = xor_mixed(6, seed=2)
    results = []
    for tpb in (None, 1, 4):
        with np.errstate(all="ignore"):
            r, w = run_gpu(X, Y, nets, hyper, 40, 4, np.float64, threads_per_block=tpb)
        results.append((r, w))
    for r, w in results[1:]:
        for j in range(len(nets)):
            a, b = lane(results[0][0], j), lane(r, j)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        for p, q in zip(results[0][1], w):
            np.testing.assert_array_equal(p, q)


# --- the model family: activations, outputs, biases, scalings, reductions, per-layer rates ----------

# One variant per activation; output, bias, scaling and reduction alternate so that each value appears
# (the default variant is the rest of this file's). Few variants: the CPU kernel compiles each one
# (and dtype) on first use, ~10 s apiece when Numba's cache is cold.
FAMILY = [
    dict(activation="sigmoid", output="identity", bias=False, scaling="ntk", reduction="mean"),
    dict(activation="tanh", output="sigmoid", bias=True, scaling="mean-field", reduction="sum"),
    dict(activation="relu", output="identity", bias=True, scaling="ntk", reduction="mean"),
    dict(activation="identity", output="sigmoid", bias=False, scaling="mean-field", reduction="mean"),
]
FAMILY_STATS = list(dict.fromkeys(STATS + ["dead_hidden_start", "dead_hidden_end", "outputs", "checkpoint_loss"]))


def family_problem(output, seed=0, n_samples=6, n_inputs=3, hidden=5):
    """Real-valued inputs (one 0, skipped), binary targets for a sigmoid output and real ones
    (so no accuracy) for an identity output; three lanes with their own learning rates per layer
    (lr_hidden != lr_output), loss and momentum. Lane 0's hidden unit 0 has zero input weights and
    a negative bias: a ReLU there is dead from the start."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n_samples, n_inputs))
    X[0, 1] = 0.0
    Y = rng.integers(0, 2, n_samples).astype(float) if output == "sigmoid" else rng.uniform(-1.5, 1.5, n_samples)
    nets = [(rng.standard_normal((n_inputs, hidden)), 0.5 * rng.standard_normal(hidden), rng.standard_normal(hidden),
             0.2) for _ in range(3)]
    nets[0][0][:, 0] = 0.0
    nets[0][1][0] = -1.0
    bce = "bce" if output == "sigmoid" else "mse"
    hyper = [dict(lr_hidden=lrh, lr_output=lro, loss=loss, bce_eps=1e-8, momentum=mom, criterion="loss", margin=0.4,
                  tol=1e-3, early_stop=False)
             for lrh, lro, loss, mom in ((0.1, 0.3, "mse", 0.0), (0.3, 0.05, bce, 0.5), (0.02, 0.2, "mse", 0.9))]
    return X, Y, nets, hyper


def assert_gpu_matches_cpu(g, wg, c, wc, rtol):
    """Integer statistics and NaN positions exactly, continuous ones to rtol (weights relative to
    the largest of their array), as in `test_matches_cpu_kernel_lane_by_lane`."""
    for k in EXACT:
        np.testing.assert_array_equal(getattr(g, k), getattr(c, k), err_msg=k)
    np.testing.assert_array_equal(g.checkpoint_epochs, c.checkpoint_epochs)
    for k in FAMILY_STATS:
        np.testing.assert_array_equal(np.isnan(getattr(g, k)), np.isnan(getattr(c, k)), err_msg=k)
        np.testing.assert_allclose(getattr(g, k), getattr(c, k), rtol=rtol, atol=rtol * 1e-3, err_msg=k)
    for p, q in zip(wg, wc):
        np.testing.assert_allclose(p, q, rtol=0, atol=rtol * np.abs(q).max())


def _family_id(family):
    return "-".join(str(v) for v in family.values())


@needs_cuda
@pytest.mark.parametrize("family, dtype, rtol", [(f, np.float64, 1e-9) for f in FAMILY] +
                         [(f, np.float32, 2e-3) for f in FAMILY[1:3]],
                         ids=lambda v: _family_id(v) if isinstance(v, dict) else None)
def test_family_matches_cpu_kernel_lane_by_lane(family, dtype, rtol):
    """Each activation, both outputs, biases or none, both scalings besides the standard one, both
    reductions, per-layer learning rates: the GPU's rows are the CPU kernel's to rounding (the GPU's
    tanh is CUDA's, the CPU's that of kernels.fastmath), and the statistics that do not apply are NaN
    on both."""
    activation, output, bias = family["activation"], family["output"], family["bias"]
    X, Y, nets, hyper = family_problem(output)
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 40, [0, 5, 40], dtype, **family)
        c, wc = run_cpu(X, Y, nets, hyper, 40, [0, 5, 40], dtype, **family)
    assert_gpu_matches_cpu(g, wg, c, wc, rtol)
    assert np.isfinite(g.final_loss).all() and (g.final_loss < g.checkpoint_loss[0]).all()
    assert np.isnan(g.accuracy).all() == (output == "identity")
    relu = activation == "relu"
    for k in ("sat_hidden_start", "sat_hidden_end"):
        assert np.isnan(getattr(g, k)).all() == relu, k
    for k in ("dead_hidden_start", "dead_hidden_end"):
        assert np.isnan(getattr(g, k)).all() != relu, k
    if relu:
        assert g.dead_hidden_start[0] >= 1 / 5 and g.dead_hidden_end[0] >= 1 / 5
    if output == "identity":
        np.testing.assert_array_equal(g.sat_output_start, 0.0)
    if not bias:  # biases neither used nor trained: the stand-ins come back unchanged
        np.testing.assert_array_equal(wg[1], lanes(*nets, dtype=dtype)[1])
        np.testing.assert_array_equal(wg[3], lanes(*nets, dtype=dtype)[3])


@needs_cuda
def test_lr_is_both_layer_rates_and_biases_may_be_none():
    """lr is lr_hidden = lr_output; without biases b1 and b2 may be None, as for `train`."""
    X, Y, nets, hyper = family_problem("sigmoid", seed=1)
    hyper = [dict(h, lr_hidden=0.2, lr_output=0.2) for h in hyper]
    one = dict(hyper[0])
    del one["lr_hidden"], one["lr_output"]
    with np.errstate(all="ignore"):
        a, wa = run_gpu(X, Y, nets, hyper, 12, 3, np.float64)
        b, wb = run_gpu(X, Y, nets, [dict(one, lr=0.2, loss=h["loss"], momentum=h["momentum"]) for h in hyper], 12, 3,
                        np.float64)
    for k in FAMILY_STATS + EXACT:  # the same kernel on the same numbers: bitwise, on a GPU too
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    for p, q in zip(wa, wb):
        np.testing.assert_array_equal(p, q)
    W1, _, W2, _ = lanes(*nets)
    W1c, _, W2c, _ = lanes(*nets)
    kw = dict(FAMILY[0], lr_hidden=0.3, lr_output=0.1, checkpoints=2)
    g = train_cuda(X, Y, W1, None, W2, None, 10, **kw)
    c = train(X, Y, W1c, None, W2c, None, 10, **kw)
    np.testing.assert_allclose(g.final_loss, c.final_loss, rtol=1e-9)
    np.testing.assert_allclose(W1, W1c, rtol=1e-9)


@needs_cuda
def test_data_set_too_big_for_constant_memory_is_read_from_global_memory():
    """300 x 32 float64 inputs (77 KB with the targets) exceed constant memory: X and Y are passed
    as global device arrays, and the rows are the CPU's to rounding as on the constant path."""
    from kernels import cuda_kernel
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (300, 32))
    X[:, 5] = 0.0
    Y = rng.integers(0, 2, 300).astype(float)
    assert X.nbytes + Y.nbytes > 64 * 1024 and not cuda_kernel.in_constant_memory(X, Y)
    assert cuda_kernel.in_constant_memory(np.zeros((272, 16)), np.zeros(272))  # 35 KB: compiled in
    nets = [(0.3 * rng.standard_normal((32, 2)), 0.1 * rng.standard_normal(2), rng.standard_normal(2), 0.0)
            for _ in range(2)]
    hyper = [dict(lr_hidden=0.05, lr_output=0.02, loss="mse", momentum=0.0),
             dict(lr_hidden=0.01, lr_output=0.03, loss="bce", momentum=0.9)]
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 3, [0, 1, 3], np.float64, **FAMILY[1])
        c, wc = run_cpu(X, Y, nets, hyper, 3, [0, 1, 3], np.float64, **FAMILY[1])
    assert_gpu_matches_cpu(g, wg, c, wc, 1e-12)
    assert (g.epochs_run == 3).all() and np.isfinite(g.accuracy).all()


@needs_cuda
def test_16_16_network_on_64_samples():
    """A larger network than XOR's (16-16-1: its weights no longer fit in registers on a GPU)."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 2, (64, 16)).astype(float)
    Y = (X[:, :3].sum(1) % 2).astype(float)
    nets = [(rng.standard_normal((16, 16)), rng.standard_normal(16), rng.standard_normal(16), 0.0) for _ in range(2)]
    hyper = [dict(lr_hidden=0.5, lr_output=0.2, loss="mse", momentum=0.0),
             dict(lr_hidden=0.1, lr_output=0.4, loss="mse", momentum=0.9)]
    kw = FAMILY[2]
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 3, 3, np.float64, **kw)
        c, wc = run_cpu(X, Y, nets, hyper, 3, 3, np.float64, **kw)
    assert_gpu_matches_cpu(g, wg, c, wc, 1e-12)
    assert g.outputs.shape == (64, 2) and np.isfinite(g.dead_hidden_end).all()


@needs_cuda
def test_kernel_cache_key():
    """A kernel per shape, dtype, switches and variant; the data set is part of the key only when it is
    compiled into constant memory (a large one is an argument: one kernel serves every data set)."""
    from kernels.cuda_kernel import get_kernel
    rng = np.random.default_rng(5)
    big = [(rng.uniform(-1, 1, (300, 32)), rng.uniform(0, 1, 300)) for _ in range(2)]
    small = [(rng.uniform(-1, 1, (4, 2)), rng.uniform(0, 1, 4)) for _ in range(2)]
    k = get_kernel(*big[0], 2, np.float64, False, False, Variant())
    assert get_kernel(*big[1], 2, np.float64, False, False, Variant()) is k
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(activation=1)) is not k
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(bias=False)) is not k
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(scaling=1)) is not k
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(scaling=2)) is not \
        get_kernel(*big[0], 2, np.float64, False, False, Variant(scaling=1))
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(reduction=1)) is not k
    assert get_kernel(*big[0], 2, np.float64, False, False, Variant(output=3)) is not k
    assert get_kernel(*big[0], 2, np.float64, True, False, Variant()) is not k
    s = get_kernel(*small[0], 2, np.float64, False, False, Variant())
    assert get_kernel(*small[0], 2, np.float64, False, False) is s
    assert get_kernel(*small[1], 2, np.float64, False, False, Variant()) is not s


# --- the notebooks' golden values ---------------------------------------------------------------

@needs_cuda
def test_notebook_002_on_gpu():
    check_notebook_002(train_cuda)


@needs_cuda
def test_notebook_001_on_gpu():
    check_notebook_001(train_cuda)


@needs_cuda
def test_notebook_000_both_runs_in_one_batch_on_gpu():
    check_notebook_000(train_cuda)


# --- behaviour ------------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diverged_lane_stops_and_does_not_poison_others(dtype):
    """Divergence stops only that lane: BCE with eps 0 on saturated outputs (log 0) at state 0,
    and a learning rate so large that the weights overflow to inf a few states in (sigmoid
    nets saturate rather than diverge: it takes lr*gradient past the largest float)."""
    nets = [nb.legacy_normal(1, 1000.0), nb.legacy_normal(42), nb.legacy_normal(3), nb.legacy_normal(4)]
    W1, b1, W2, b2 = lanes(*nets, dtype=dtype)
    huge = 3e38 if dtype == np.float32 else 1e308
    kw = dict(lr=[0.1, 0.1, huge, 0.5], loss=["bce", "bce", "bce", "mse"],
              bce_eps=[0.0, 1e-8, 1e-8, 1e-8], momentum=[0.0, 0.0, 0.9, 0.0], checkpoints=[0, 1, 5, 200])
    with np.errstate(all="ignore"):
        r = train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 200, **kw)
        c = train(nb.XOR_X, nb.XOR_Y, *lanes(*nets, dtype=dtype), 200, **kw)
    assert r.diverged.tolist() == [True, False, True, False]
    assert r.epochs_run[0] == 0 and 0 < r.epochs_run[2] < 200 and r.epochs_run[[1, 3]].tolist() == [200, 200]
    for k in EXACT:
        np.testing.assert_array_equal(getattr(r, k), getattr(c, k), err_msg=k)
    assert not np.isfinite(r.final_loss[[0, 2]]).any() and not r.converged[[0, 2]].any()
    assert np.isnan(r.checkpoint_loss[1:, 0]).all() and np.isnan(r.checkpoint_loss[-1, 2])
    assert np.all(np.isfinite(W1[..., [1, 3]])) and np.isfinite(r.final_loss[[1, 3]]).all()
    np.testing.assert_allclose(r.final_loss[[1, 3]], c.final_loss[[1, 3]], rtol=1e-3 if dtype == np.float32 else 1e-9)


@needs_cuda
def test_early_stop_reports_epochs_run_and_keeps_the_converged_state():
    early = check_early_stop(train_cuda, 8, 2.0, 600)
    cpu = check_early_stop(train, 8, 2.0, 600)
    np.testing.assert_array_equal(early.epochs_run, cpu.epochs_run)


@needs_cuda
def test_checkpoints_explicit_unsorted_repeated_and_not_reached():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42), nb.legacy_normal(42))
    ck = [50, 0, 20, 20, 3]
    r = train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 50, lr=0.1, checkpoints=ck, early_stop=[False, True],
                   criterion="loss", tol=0.26)
    c = train(nb.XOR_X, nb.XOR_Y, *lanes(nb.legacy_normal(42), nb.legacy_normal(42)), 50, lr=0.1,
              checkpoints=ck, early_stop=[False, True], criterion="loss", tol=0.26)
    np.testing.assert_array_equal(r.checkpoint_epochs, ck)
    assert r.checkpoint_loss[0, 0] == r.final_loss[0] and r.checkpoint_loss[2, 0] == r.checkpoint_loss[3, 0]
    assert 3 < r.epochs_run[1] < 20 and np.isnan(r.checkpoint_loss[[0, 2, 3], 1]).all()
    np.testing.assert_array_equal(np.isnan(r.checkpoint_loss), np.isnan(c.checkpoint_loss))
    np.testing.assert_allclose(r.checkpoint_loss, c.checkpoint_loss, rtol=1e-12)
    no_ck = train_cuda(nb.XOR_X, nb.XOR_Y, *lanes(nb.legacy_normal(42)), 0, lr=0.1, checkpoints=0)
    assert no_ck.checkpoint_loss.shape == (0, 1) and no_ck.epochs_run[0] == 0


@needs_cuda
def test_empty_batch():
    r = train_cuda(nb.XOR_X, nb.XOR_Y, np.zeros((2, 4, 0)), np.zeros((4, 0)), np.zeros((4, 0)), np.zeros(0), 10,
                   lr=0.1, checkpoints=3)
    assert r.final_loss.shape == (0,) and r.outputs.shape == (4, 0) and r.checkpoint_loss.shape == (3, 0)


@needs_cuda
def test_outputs_false_keeps_no_outputs_and_changes_nothing_else():
    """As for the CPU kernel (tests/test_kernel.py); 1-sample data sets too, where the kernel's stand-in row
    for no outputs has the outputs' own shape."""
    _same_results_without_outputs(train_cuda)
    one = train_cuda(nb.XOR_X[:1], nb.XOR_Y[:1], *lanes(nb.legacy_normal(42)), 5, lr=0.1, outputs=False)
    assert one.outputs.shape == (0, 1) and one.final_loss.shape == (1,)


# --- validation: identical to the CPU entry point, with or without a GPU ------------------------

def _bad_calls():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0), nb.legacy_normal(1))
    ok = (nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10)
    readonly = W1.copy()
    readonly.flags.writeable = False
    return {
        "loss name": (ok, dict(lr=0.1, loss="hinge")),
        "loss code": (ok, dict(lr=0.1, loss=[0, 2])),
        "criterion": (ok, dict(lr=0.1, criterion="best")),
        "lr per lane": (ok, dict(lr=[0.1, 0.2, 0.3])),
        "checkpoints": (ok, dict(lr=0.1, checkpoints=[0, 99])),
        "epochs": ((*ok[:-1], -1), dict(lr=0.1)),
        "float16": ((nb.XOR_X, nb.XOR_Y, W1.astype(np.float16), b1, W2, b2, 10), dict(lr=0.1)),
        "fortran": ((nb.XOR_X, nb.XOR_Y, np.asfortranarray(W1), b1, W2, b2, 10), dict(lr=0.1)),
        "read-only": ((nb.XOR_X, nb.XOR_Y, readonly, b1, W2, b2, 10), dict(lr=0.1)),
        "mixed dtypes": ((nb.XOR_X, nb.XOR_Y, W1, b1.astype(np.float32), W2, b2, 10), dict(lr=0.1)),
        "b1 shape": ((nb.XOR_X, nb.XOR_Y, W1, b1[:3].copy(), W2, b2, 10), dict(lr=0.1)),
        "W1 ndim": ((nb.XOR_X, nb.XOR_Y, W1[..., 0].copy(), b1, W2, b2, 10), dict(lr=0.1)),
        "X shape": ((nb.XOR_X[:, :1], nb.XOR_Y, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "targets": ((nb.XOR_X, nb.XOR_Y * 2, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "inputs": ((np.where(nb.XOR_X == 1, np.nan, 0), nb.XOR_Y, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "samples": ((np.zeros((MAX_SAMPLES + 1, 2)), np.zeros(MAX_SAMPLES + 1), W1, b1, W2, b2, 10), dict(lr=0.1)),
        "activation": (ok, dict(lr=0.1, activation="softplus")),
        "output": (ok, dict(lr=0.1, output="tanh")),
        "scaling": (ok, dict(lr=0.1, scaling="muP")),
        "reduction": (ok, dict(lr=0.1, reduction="max")),
        "bias": (ok, dict(lr=0.1, bias="no")),
        "bce needs a sigmoid output": (ok, dict(lr=0.1, loss="bce", output="identity")),
        "lr_hidden alone": (ok, dict(lr_hidden=0.1)),
        "no lr": (ok, dict()),
        "b1 None with biases": ((nb.XOR_X, nb.XOR_Y, W1, None, W2, b2, 10), dict(lr=0.1)),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_validation_errors_are_those_of_train(case):
    """Arguments are checked by the same code (kernels.batch.prepare) before any GPU is looked
    for: same exception class and message on every machine."""
    args, kw = _bad_calls()[case]
    with pytest.raises((TypeError, ValueError)) as cpu:
        train(*args, **kw)
    with pytest.raises((TypeError, ValueError)) as gpu:
        train_cuda(*args, **kw)
    assert type(gpu.value) is type(cpu.value)
    assert str(gpu.value) == str(cpu.value)


def test_threads_per_block_is_checked():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0))
    with pytest.raises(ValueError, match="threads_per_block"):
        train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10, lr=0.1, threads_per_block=2048)


# --- no GPU: a clear error ----------------------------------------------------------------------

_CALL = """
import sys
import numpy as np
from kernels.cuda import CudaUnavailableError, cuda_available, train_cuda
ok, why = cuda_available()
print("AVAILABLE" if ok else "UNAVAILABLE", why)
if ok:
    sys.exit(0)
W1, b1, W2, b2 = np.ones((2, 4, 3)), np.zeros((4, 3)), np.ones((4, 3)), np.zeros(3)
try:
    train_cuda(np.zeros((4, 2)), np.zeros(4), W1, b1, W2, b2, 10, lr=0.1)
except CudaUnavailableError as exc:
    print("RAISED", type(exc).__name__, isinstance(exc, RuntimeError), repr(str(exc)))
"""


def _python(code, env_changes):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_gpu_raises_a_one_line_error():
    """Without the simulator (NUMBA_ENABLE_CUDASIM unset), on a machine without an NVIDIA driver
    or GPU, cuda_available() says why and train_cuda raises CudaUnavailableError saying the
    same in one line, instead of an error from deep inside numba at the first launch."""
    p = _python(_CALL, {})
    assert p.returncode == 0, p.stderr
    if p.stdout.startswith("AVAILABLE"):
        pytest.skip(f"a CUDA GPU is present: {p.stdout.strip()}")
    lines = p.stdout.splitlines()
    assert lines[0].startswith("UNAVAILABLE no usable CUDA GPU: "), p.stdout
    assert lines[1].startswith("RAISED CudaUnavailableError True 'cannot train on the GPU: no usable CUDA GPU: ")
    assert "\\n" not in lines[1] and len(lines) == 2
    assert "Traceback" not in p.stderr


def test_without_numba_cuda_the_error_says_how_to_install_it():
    p = _python("import sys; sys.modules['numba_cuda'] = None\n" + _CALL, {})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "UNAVAILABLE numba-cuda is not installed (pip install numba-cuda)", p.stdout
    assert lines[1] == ("RAISED CudaUnavailableError True 'cannot train on the GPU: numba-cuda is not installed "
                        "(pip install numba-cuda)'")


def test_simulator_is_reported():
    p = _python("from kernels.cuda import cuda_available; print(cuda_available())", {"NUMBA_ENABLE_CUDASIM": "1"})
    assert p.returncode == 0, p.stderr
    assert "(True, 'CUDA simulator" in p.stdout


# --- benchmarks/bench_gpu.py ----------------------------------------------------------------------

def test_bench_gpu_without_gpu_says_so_in_one_line():
    p = _python("import runpy, sys; sys.argv = ['bench_gpu.py', '--small']; "
                "sys.exit(runpy.run_path('benchmarks/bench_gpu.py', run_name='__main__'))", {})
    if p.returncode == 0:
        pytest.skip("a CUDA GPU is present")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("bench_gpu: no GPU to benchmark: ") and p.stderr.count("\n") == 1, p.stderr


@pytest.mark.slow
def test_bench_gpu_small_runs_on_the_simulator():
    """--small is the one run the simulator allows: a smoke test of the script, not a measurement."""
    p = _python("import runpy, sys; sys.argv = ['bench_gpu.py', '--small', '--repeats', '1']; "
                "sys.exit(runpy.run_path('benchmarks/bench_gpu.py', run_name='__main__'))",
                {"NUMBA_ENABLE_CUDASIM": "1"})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert {"gpu_f32", "gpu_f64", "cpu_f64", "cpu_f32", "gpu_f32_vs_cpu_f32", "gpu_f64_vs_cpu_f64"} <= set(out)
    assert out["simulator"] and out["max_final_mse_diff"]["f64_gpu_vs_cpu"] < 1e-12
    assert "host<->device copies included" in p.stdout

"""The Numba kernels against the NumPy reference, the seed notebooks, and themselves."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import checkpoint_epochs, train
from kernels.reference import train_reference
from tests import notebooks as nb

STATS = ["final_loss", "min_loss", "final_mse", "accuracy", "sat_hidden_start", "sat_output_start",
         "sat_hidden_end", "sat_output_end", "grad_norm"]
EXACT = ["epoch_converged", "converged", "epochs_run", "diverged"]


def lanes(*nets, dtype=np.float64):
    """Stack per-network (W1 (D,H), b1 (H,), W2 (H,), b2) into lane arrays."""
    W1 = np.ascontiguousarray(np.stack([n[0] for n in nets], -1), dtype=dtype)
    b1 = np.ascontiguousarray(np.stack([n[1] for n in nets], -1), dtype=dtype)
    W2 = np.ascontiguousarray(np.stack([n[2] for n in nets], -1), dtype=dtype)
    b2 = np.ascontiguousarray(np.array([n[3] for n in nets]), dtype=dtype)
    return W1, b1, W2, b2


def lane(result, j):
    return {k: getattr(result, k)[..., j] for k in STATS + EXACT + ["outputs", "checkpoint_loss"]}


# --- golden values of the notebooks, through the kernel ---------------------------------

def test_notebook_002_through_kernel():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42))
    r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, checkpoints=nb.NB002_STATES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:, 0], 4), nb.NB002_LOSSES)
    np.testing.assert_allclose(W1[..., 0], nb.NB002_W1, atol=5e-9)
    np.testing.assert_allclose(W2[..., 0], nb.NB002_W2, atol=5e-9)
    np.testing.assert_allclose(b1[..., 0], nb.NB002_B1, atol=5e-9)
    np.testing.assert_allclose(b2[0], nb.NB002_B2, atol=5e-9)
    np.testing.assert_allclose(r.outputs[:, 0], nb.NB002_PREDICTIONS, atol=5e-9)
    np.testing.assert_array_equal(r.outputs[:, 0] > 0.5, [0, 1, 1, 0])


def test_notebook_001_through_kernel():
    W1, b1, W2, b2 = lanes(nb.legacy_uniform_001())
    train(nb.NB001_X, nb.NB001_Y, W1, b1, W2, b2, 1, lr=0.1)
    np.testing.assert_allclose(W1[..., 0].T, nb.NB001_W1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(b1[..., 0], nb.NB001_B1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(W2[..., 0], nb.NB001_W2_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(b2[0], nb.NB001_B2_AFTER_ONE, atol=5e-9)
    W1, b1, W2, b2 = lanes(nb.legacy_uniform_001())
    r = train(nb.NB001_X, nb.NB001_Y, W1, b1, W2, b2, int(nb.NB001_STATES[-1]), lr=0.1,
              checkpoints=nb.NB001_STATES)
    np.testing.assert_allclose(r.checkpoint_loss[:, 0], nb.NB001_LOSSES, rtol=1e-9)


def test_notebook_000_through_kernel_both_runs_in_one_batch():
    """The saturated (MSE, x10) and fixed (BCE, x0.1) runs as two lanes of one call."""
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0, 10.0), nb.legacy_normal(0, 0.1))
    r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, loss=["mse", "bce"], bce_eps=1e-8,
              checkpoints=nb.NB000_FIXED_STATES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:5, 0], 6), nb.NB000_SATURATED_LOSSES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:, 1], 6), nb.NB000_FIXED_LOSSES)
    np.testing.assert_array_equal(r.outputs[:, 1].round(), nb.NB000_FIXED_PREDICTIONS)
    assert r.sat_hidden_start[0] > 0.5 and not r.converged[0] and r.converged[1]


# --- property tests against the reference ------------------------------------------------

@st.composite
def problems(draw, max_lanes=6):
    n_inputs = draw(st.integers(1, 4))
    hidden = draw(st.integers(1, 6))
    n_samples = draw(st.integers(1, 8))
    n_lanes = draw(st.integers(1, max_lanes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        X = rng.integers(0, 2, (n_samples, n_inputs)).astype(float)
    else:
        X = rng.uniform(-2, 2, (n_samples, n_inputs))
    Y = rng.integers(0, 2, n_samples).astype(float) if draw(st.booleans()) else rng.uniform(0, 1, n_samples)
    epochs = draw(st.integers(0, 120))
    nets, hyper = [], []
    for _ in range(n_lanes):
        scale = draw(st.sampled_from([0.05, 0.5, 1.0, 3.0, 10.0]))
        nets.append((rng.standard_normal((n_inputs, hidden)) * scale, rng.standard_normal(hidden) * scale,
                     rng.standard_normal(hidden) * scale, float(rng.standard_normal() * scale)))
        hyper.append(dict(
            lr=draw(st.sampled_from([0.01, 0.1, 0.5, 2.0])),
            loss=draw(st.sampled_from(["mse", "bce"])),
            bce_eps=draw(st.sampled_from([1e-8, 1e-4])),
            momentum=draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])),
            criterion=draw(st.sampled_from(["margin", "loss"])),
            margin=draw(st.sampled_from([0.1, 0.4, 0.5])),
            tol=draw(st.sampled_from([0.01, 0.1])),
            early_stop=draw(st.booleans()),
        ))
    ck = checkpoint_epochs(epochs, draw(st.integers(0, 5)))
    return X, Y, nets, hyper, epochs, ck


def run_batch(X, Y, nets, hyper, epochs, ck, dtype, **kw):
    W1, b1, W2, b2 = lanes(*nets, dtype=dtype)
    per_lane = {k: [h[k] for h in hyper] for k in hyper[0]}
    r = train(X, Y, W1, b1, W2, b2, epochs, checkpoints=ck, **per_lane, **kw)
    return r, (W1, b1, W2, b2)


def compare(r, weights, X, Y, nets, hyper, epochs, ck, dtype, rtol, atol):
    for j, (net, h) in enumerate(zip(nets, hyper)):
        ref = train_reference(X, Y, *(np.asarray(p, dtype) for p in net), epochs, checkpoints=ck, **h)
        got = lane(r, j)
        for k in EXACT:
            assert got[k] == ref[k], (k, j, h)
        for k in STATS:
            np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol, err_msg=k)
        np.testing.assert_allclose(got["outputs"], ref["outputs"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got["checkpoint_loss"], ref["checkpoint_loss"], rtol=rtol, atol=atol)
        for name, p in zip(("W1", "b1", "W2", "b2"), weights):
            np.testing.assert_allclose(p[..., j], ref[name], rtol=rtol, atol=atol, err_msg=name)


@settings(max_examples=60)
@given(problems())
def test_float64_kernel_matches_reference(problem):
    """float64 agrees to rtol 1e-9: both compute the same formulas in the same order, but exp
    (ours vs NumPy's, each within 1 ulp) and the reference's BLAS sums may round differently
    in the last bit, and ~100 epochs of gradient descent amplify that by a few orders."""
    with np.errstate(all="ignore"):
        r, w = run_batch(*problem, np.float64)
        compare(r, w, *problem, np.float64, rtol=1e-9, atol=1e-12)


@settings(max_examples=30)
@given(problems())
def test_float32_kernel_is_as_accurate_as_float32_numpy(problem):
    """float32 is compared with the float64 reference: the kernel's error must stay within
    4x the error of the same training done in float32 NumPy (plus 1e-4): float32 sums are
    rounded differently (sequential here, pairwise/BLAS there), so the two float32 results
    drift apart by as much as each drifts from the float64 one (up to ~1e-3 after 100
    epochs with momentum), but no more. Thresholds are moved out of the way (criterion
    'loss' with tol 1e-12, no early stop), so the integer statistics must agree."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False, criterion="loss", tol=1e-12) for h in hyper]
    with np.errstate(all="ignore"):
        r, w = run_batch(X, Y, nets, hyper, epochs, ck, np.float32)
        for j, (net, h) in enumerate(zip(nets, hyper)):
            ref64 = train_reference(X, Y, *net, epochs, checkpoints=ck, **h)
            ref32 = train_reference(X, Y, *(np.asarray(p, np.float32) for p in net), epochs,
                                    checkpoints=ck, **h)
            assert r.diverged[j] == ref32["diverged"] == ref64["diverged"]
            assert r.epochs_run[j] == ref32["epochs_run"]
            if ref64["diverged"]:
                continue
            got = lane(r, j)
            got.update(zip(("W1", "b1", "W2", "b2"), (p[..., j] for p in w)))
            for k in STATS + ["outputs", "checkpoint_loss", "W1", "b1", "W2", "b2"]:
                truth = np.asarray(ref64[k], float)
                allowed = 4 * np.abs(np.asarray(ref32[k], float) - truth) + 1e-4 * (1 + np.abs(truth))
                assert np.all(np.abs(np.asarray(got[k], float) - truth) <= allowed), k


@settings(max_examples=30)
@given(problems(max_lanes=9), st.sampled_from([1, 2, 3, 8]), st.sampled_from([1, 2]))
def test_lane_results_are_bitwise_independent_of_batch_tile_and_threads(problem, tile, threads):
    """Each lane of a mixed batch equals, bit for bit, the same lane trained alone."""
    X, Y, nets, hyper, epochs, ck = problem
    with np.errstate(all="ignore"):
        batch, wb = run_batch(X, Y, nets, hyper, epochs, ck, np.float64, tile=tile, threads=threads)
        for j in range(len(nets)):
            alone, wa = run_batch(X, Y, nets[j:j + 1], hyper[j:j + 1], epochs, ck, np.float64)
            a, b = lane(batch, j), lane(alone, 0)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            for p, q in zip(wb, wa):
                np.testing.assert_array_equal(p[..., j], q[..., 0])


# --- behaviour ------------------------------------------------------------------------------

def test_diverged_lane_stops_and_does_not_poison_others():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(1, 1000.0), nb.legacy_normal(42))
    with np.errstate(all="ignore"):
        r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, loss="bce", bce_eps=[0.0, 1e-8])
    assert r.diverged.tolist() == [True, False]
    assert r.epochs_run.tolist() == [0, 10000]
    assert r.converged.tolist() == [False, True]
    assert np.all(np.isfinite(W1[..., 1]))


def test_early_stop_reports_epochs_run_and_keeps_the_converged_state():
    nets = [nb.legacy_normal(s, 1.0 if s % 2 else 8.0) for s in range(16)]  # x8: many stall
    full, wf = run_batch(nb.XOR_X, nb.XOR_Y, nets, [dict(lr=0.5)] * 16, 3000, [], np.float64)
    early, we = run_batch(nb.XOR_X, nb.XOR_Y, nets, [dict(lr=0.5, early_stop=True)] * 16, 3000, [], np.float64)
    conv = full.epoch_converged >= 0
    assert conv.any() and not conv.all()
    np.testing.assert_array_equal(early.epoch_converged, full.epoch_converged)
    np.testing.assert_array_equal(early.epochs_run, np.where(conv, full.epoch_converged, 3000))
    assert early.converged[conv].all()
    # A lane that never converges trains to the end, bit-identically with or without early stop.
    np.testing.assert_array_equal(we[0][..., ~conv], wf[0][..., ~conv])


def test_checkpoints_log_spaced_and_explicit():
    np.testing.assert_array_equal(checkpoint_epochs(10000, 5), [0, 9, 99, 999, 10000])
    assert checkpoint_epochs(100, 0).size == 0
    np.testing.assert_array_equal(checkpoint_epochs(3, 10), [0, 1, 2, 3])
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42))
    r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 50, lr=0.1, checkpoints=[50, 0, 10])
    np.testing.assert_array_equal(r.checkpoint_epochs, [50, 0, 10])
    assert r.checkpoint_loss[0, 0] == r.final_loss[0]
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42))
    r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 50, lr=0.1, checkpoints=[50, 0, 10], early_stop=True,
              criterion="loss", tol=0.3)
    assert r.epochs_run[0] < 10 and np.isnan(r.checkpoint_loss[[0, 2], 0]).all()


@pytest.mark.parametrize("bad, message", [
    (dict(loss="hinge"), "loss must be one of"),
    (dict(lr=[0.1, 0.2, 0.3]), "one value per lane"),
    (dict(checkpoints=[0, 99]), "checkpoint states"),
])
def test_bad_arguments_raise_clear_errors(bad, message):
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0), nb.legacy_normal(1))
    kw = dict(lr=0.1)
    kw.update(bad)
    with pytest.raises(ValueError, match=message):
        train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10, **kw)


def test_weights_of_wrong_dtype_or_layout_are_refused():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0))
    with pytest.raises(TypeError, match="C-contiguous"):
        train(nb.XOR_X, nb.XOR_Y, np.asfortranarray(np.repeat(W1, 2, -1)), np.repeat(b1, 2, -1),
              np.repeat(W2, 2, -1), np.repeat(b2, 2), 10, lr=0.1)
    with pytest.raises(TypeError, match="float64 or float32"):
        train(nb.XOR_X, nb.XOR_Y, W1.astype(np.float16), b1, W2, b2, 10, lr=0.1)

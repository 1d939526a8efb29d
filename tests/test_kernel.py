"""The Numba kernels against the NumPy reference, the seed notebooks, and themselves."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import checkpoint_epochs, train
from kernels.batch import TrainResult
from kernels import reference
from kernels.reference import train_reference
from tests import notebooks as nb

STATS = ["final_loss", "min_loss", "final_mse", "accuracy", "sat_hidden_start", "sat_output_start",
         "sat_hidden_end", "sat_output_end", "grad_norm", "dead_hidden_start", "dead_hidden_end",
         "loss_ratio_sum", "loss_ratio_tail", "trainability"]
# One per call: the same in every lane's dict (the model, and the update scheme of tests/test_kernel_optimizers.py).
MODEL = ("activation", "output", "bias", "scaling", "reduction", "optimizer", "batch_size", "shuffle")
DEFAULT_MODEL = dict(activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum")
EXACT = ["epoch_converged", "converged", "epochs_run", "diverged", "epoch_diverged"]
CONTINUOUS = ["final_loss", "min_loss", "final_mse", "grad_norm"]


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

def check_notebook_002(train_fn):
    """Notebook 002 through `train_fn` (`train` or `train_cuda`): losses to the printed 4 decimals,
    weights and predictions to the printed 8."""
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42))
    r = train_fn(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, checkpoints=nb.NB002_STATES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:, 0], 4), nb.NB002_LOSSES)
    np.testing.assert_allclose(W1[..., 0], nb.NB002_W1, atol=5e-9)
    np.testing.assert_allclose(W2[..., 0], nb.NB002_W2, atol=5e-9)
    np.testing.assert_allclose(b1[..., 0], nb.NB002_B1, atol=5e-9)
    np.testing.assert_allclose(b2[0], nb.NB002_B2, atol=5e-9)
    np.testing.assert_allclose(r.outputs[:, 0], nb.NB002_PREDICTIONS, atol=5e-9)
    np.testing.assert_array_equal(r.outputs[:, 0] > 0.5, [0, 1, 1, 0])


def check_notebook_001(train_fn):
    """Notebook 001: the weights after one step, then the losses at its printed states."""
    W1, b1, W2, b2 = lanes(nb.legacy_uniform_001())
    train_fn(nb.NB001_X, nb.NB001_Y, W1, b1, W2, b2, 1, lr=0.1)
    np.testing.assert_allclose(W1[..., 0].T, nb.NB001_W1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(b1[..., 0], nb.NB001_B1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(W2[..., 0], nb.NB001_W2_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(b2[0], nb.NB001_B2_AFTER_ONE, atol=5e-9)
    W1, b1, W2, b2 = lanes(nb.legacy_uniform_001())
    r = train_fn(nb.NB001_X, nb.NB001_Y, W1, b1, W2, b2, int(nb.NB001_STATES[-1]), lr=0.1,
                 checkpoints=nb.NB001_STATES)
    np.testing.assert_allclose(r.checkpoint_loss[:, 0], nb.NB001_LOSSES, rtol=1e-9)


def check_notebook_000(train_fn):
    """Notebook 000: the saturated (MSE, x10) and fixed (BCE, x0.1) runs as two lanes of one call."""
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0, 10.0), nb.legacy_normal(0, 0.1))
    r = train_fn(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, loss=["mse", "bce"], bce_eps=1e-8,
                 checkpoints=nb.NB000_FIXED_STATES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:5, 0], 6), nb.NB000_SATURATED_LOSSES)
    np.testing.assert_array_equal(np.round(r.checkpoint_loss[:, 1], 6), nb.NB000_FIXED_LOSSES)
    np.testing.assert_array_equal(r.outputs[:, 1].round(), nb.NB000_FIXED_PREDICTIONS)
    assert r.sat_hidden_start[0] > 0.5 and not r.converged[0] and r.converged[1]


def test_notebook_002_through_kernel():
    check_notebook_002(train)


def test_notebook_001_through_kernel():
    check_notebook_001(train)


def test_notebook_000_through_kernel_both_runs_in_one_batch():
    check_notebook_000(train)


# --- property tests against the reference ------------------------------------------------

@st.composite
def models(draw):
    """A model variant: the default sigmoid network half of the time, else any of the family."""
    if draw(st.booleans()):
        return dict(DEFAULT_MODEL)
    return dict(activation=draw(st.sampled_from(["sigmoid", "tanh", "relu", "identity"])),
                output=draw(st.sampled_from(["sigmoid", "identity"])), bias=draw(st.booleans()),
                scaling=draw(st.sampled_from(["standard", "ntk", "mean-field"])),
                reduction=draw(st.sampled_from(["sum", "mean"])))


@st.composite
def problems(draw, max_lanes=6):
    """(X, Y, nets, hyper, epochs, ck): each lane's hyperparameters in its dict, with the model of the
    call (the same in every dict, see `run_batch`)."""
    n_inputs = draw(st.integers(1, 4))
    hidden = draw(st.integers(1, 6))
    n_samples = draw(st.integers(1, 8))
    n_lanes = draw(st.integers(1, max_lanes))
    seed = draw(st.integers(0, 2**32 - 1))
    model = draw(models())
    linear = model["output"] == "identity"
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        X = rng.integers(0, 2, (n_samples, n_inputs)).astype(float)
    else:
        X = rng.uniform(-2, 2, (n_samples, n_inputs))
    if linear and draw(st.booleans()):
        Y = rng.standard_normal(n_samples)
    else:
        Y = rng.integers(0, 2, n_samples).astype(float) if draw(st.booleans()) else rng.uniform(0, 1, n_samples)
    epochs = draw(st.integers(0, 120))
    nets, hyper = [], []
    for _ in range(n_lanes):
        scale = draw(st.sampled_from([0.05, 0.5, 1.0, 3.0, 10.0]))
        nets.append((rng.standard_normal((n_inputs, hidden)) * scale, rng.standard_normal(hidden) * scale,
                     rng.standard_normal(hidden) * scale, float(rng.standard_normal() * scale)))
        rates = [0.01, 0.1, 0.5, 2.0]
        lr = draw(st.sampled_from(rates))
        layers = dict(lr_hidden=draw(st.sampled_from(rates)), lr_output=draw(st.sampled_from(rates))) \
            if draw(st.booleans()) else {}
        hyper.append(dict(
            model,
            lr=lr,
            **layers,
            loss="mse" if linear else draw(st.sampled_from(["mse", "bce"])),
            bce_eps=draw(st.sampled_from([1e-8, 1e-4])),
            momentum=draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])),
            criterion=draw(st.sampled_from(["margin", "loss"])),
            margin=draw(st.sampled_from([0.1, 0.4, 0.5])),
            tol=draw(st.sampled_from([0.01, 0.1])),
            early_stop=draw(st.booleans()),
        ))
    ck = checkpoint_epochs(epochs, draw(st.integers(0, 5)))
    return X, Y, nets, hyper, epochs, ck


def run_batch(X, Y, nets, hyper, epochs, ck, dtype, train_fn=train, **kw):
    """Train `nets` as the lanes of one call of `train_fn`, each with its `hyper` dict;
    return the result and the final lane arrays."""
    W1, b1, W2, b2 = lanes(*nets, dtype=dtype)
    model = {k: hyper[0][k] for k in MODEL if k in hyper[0]}
    per_lane = {k: [h.get(k, h.get("lr")) for h in hyper] for k in dict.fromkeys(k for h in hyper for k in h)
                if k not in MODEL}
    r = train_fn(X, Y, W1, b1, W2, b2, epochs, checkpoints=ck, **per_lane, **model, **kw)
    return r, (W1, b1, W2, b2)


@contextlib.contextmanager
def _exp_off_by_one_ulp(sign, ulp=2.0**-52):
    """The reference with every exp one ulp off and every tanh three ulps off: the kind of difference
    our exp and tanh make (tests/test_fastmath.py). `ulp`: 2**-23 for float32."""
    original, activate = reference.sigmoid, reference.activate
    reference.sigmoid = lambda x: 1 / (1 + np.exp(-x) * (1 + sign * ulp))
    reference.activate = lambda z, act: (np.tanh(z) * (1 + sign * 3 * ulp)).astype(np.asarray(z).dtype) \
        if act == "tanh" else activate(z, act)
    try:
        yield
    finally:
        reference.sigmoid, reference.activate = original, activate


def sensitivity_probes(X, Y, net, h, epochs, ck):
    """The reference trained under five changes of the size that separate the kernel from it:
    every exp one ulp larger, or smaller; the initial weights one ulp up, or down; the samples
    in reverse order (every sum over samples rounded in another order, as the kernel's
    sequential sums are rounded otherwise than NumPy's; not with minibatches, whose batches it would change)."""
    def run(X, Y, net):
        return train_reference(X, Y, *net, epochs, checkpoints=ck, **h)

    probes = []
    for sign in (1, -1):
        with _exp_off_by_one_ulp(sign):
            probes.append(run(X, Y, net))
        probes.append(run(X, Y, tuple(np.nextafter(np.asarray(p, float), sign * np.inf) for p in net)))
    if not h.get("batch_size"):  # with minibatches another order makes other batches: not a rounding change
        backwards = run(X[::-1], Y[::-1], net)
        probes.append(dict(backwards, outputs=backwards["outputs"][::-1]))
    return probes


def chaotic(ref, probes):
    """A probe moves the final loss by more than 1e-3 (1 + |loss|): the dynamics amplify
    rounding to the scale of the result itself (a large lr bouncing a net between saturated
    states), and the kernel's result is just another draw from that spread."""
    loss = ref["final_loss"]
    return any(abs(p["final_loss"] - loss) > 1e-3 * (1 + abs(loss)) for p in probes)


def _undetermined(ref, probes, key, threshold, rtol, atol):
    """Whether rounding decides a statistic that steps where `key` crosses `threshold`: a value of the
    reference's `key` is not finite (a run that diverged at its last update: inf - inf is NaN in one order of
    sums, inf in another) or lies within the allowed difference of the threshold. Accuracy steps where an
    output crosses 0.5, the trainability score's sign where loss_ratio_tail crosses 1 (a stuck run whose
    loss moves in its last bits only). (`compare` checks the kernel's accuracy against its own outputs in
    every lane; tests/test_kernel.py's trainability test, its score against its own losses.)"""
    want = np.asarray(ref[key], float)
    if not np.all(np.isfinite(want)):
        return True
    spread = np.max([np.abs(np.asarray(p[key], float) - want) for p in probes], axis=0)
    allowed = np.maximum(rtol * np.abs(want), 4 * spread) + atol
    return bool(np.any(np.abs(want - threshold) <= allowed))


STEPS = {"accuracy": ("outputs", 0.5), "trainability": ("loss_ratio_tail", 1.0)}


def compare(r, weights, X, Y, nets, hyper, epochs, ck, rtol, atol):
    """Each lane against the float64 reference.

    Allowed difference: rtol relative, or 4x the largest difference that a probe of
    `sensitivity_probes` makes in the reference itself. Where gradient descent is
    ill-conditioned (near a saddle, or a BCE output saturated the wrong way, whose delta
    is ~1/(a + eps)), rounding differences grow far beyond rtol; the probes measure how far
    for each case, in several directions, since one kind of probe alone may be absorbed
    (all of a lane's saturated exps) where another is amplified. Integer statistics must be
    equal unless a probe alters them too. Continuous statistics of `chaotic` lanes are not
    compared: there no multiple of a few probes bounds a rounding difference.
    """
    for j, (net, h) in enumerate(zip(nets, hyper)):
        ref = train_reference(X, Y, *net, epochs, checkpoints=ck, **h)
        probes = sensitivity_probes(X, Y, net, h, epochs, ck)
        got = lane(r, j)
        got.update(zip(("W1", "b1", "W2", "b2"), (p[..., j] for p in weights)))
        if np.isfinite(got["accuracy"]):  # the share of its own final outputs on the right side of 0.5
            assert got["accuracy"] == np.mean((np.asarray(got["outputs"]) > 0.5) == (np.asarray(Y) > 0.5)), j
        for k in EXACT:
            if all(ref[k] == p[k] for p in probes):
                assert got[k] == ref[k], (k, j, h)
        if any(ref["epochs_run"] != p["epochs_run"] for p in probes) or ref["epochs_run"] != got["epochs_run"]:
            continue
        if chaotic(ref, probes):
            continue
        for k in STATS + ["outputs", "checkpoint_loss", "W1", "W2"] + (["b1", "b2"] if h.get("bias", True) else []):
            want = np.asarray(ref[k], float)
            spread = np.max([np.abs(np.asarray(p[k], float) - want) for p in probes], axis=0)
            diff = np.abs(np.asarray(got[k], float) - want)
            allowed = np.maximum(rtol * np.abs(want), 4 * spread) + atol
            if k in STEPS and _undetermined(ref, probes, *STEPS[k], rtol, atol):
                continue
            # equal, or both non-finite (a diverged lane's gradient: inf or NaN by the order of its sums)
            same = (~np.isfinite(want) & ~np.isfinite(np.asarray(got[k], float))) | (np.asarray(got[k], float) == want)
            assert np.all((diff <= allowed) | same), (k, j, diff.max(), h)


@settings(max_examples=60)
@given(problems())
def test_float64_kernel_matches_reference(problem):
    """float64 agrees to rtol 1e-8 (or the reference's own sensitivity to one-ulp changes, see
    `compare`): both compute the same formulas, but exp (ours vs NumPy's, each within 1 ulp)
    and the sums (sequential here, BLAS there) may round differently in the last bit, and
    ~100 epochs amplify that: by a few orders of magnitude in general, by up to 1/bce_eps**2
    per step where a BCE output saturates (the notebook's delta -y/(a + eps) + ...), and
    without bound in chaotic lanes (a large lr with BCE), which are left out."""
    with np.errstate(all="ignore"):
        r, w = run_batch(*problem, np.float64)
        compare(r, w, *problem, rtol=1e-8, atol=1e-12)


def _z(X, W1, b1, W2, b2):
    z1 = X @ W1 + b1
    return z1, (1 / (1 + np.exp(-z1))) @ W2 + b2


@settings(max_examples=30)
@given(problems())
def test_float32_kernel_is_as_accurate_as_float32_numpy(problem):
    """float32 is compared with the float64 reference. The kernel's error must stay within
    10x the error of the same training in float32 NumPy, or 10x the change that a float32
    rounding makes in float32 NumPy (plus 1e-4): a one-ulp nudge, up or down, of the initial
    weights, every exp one ulp larger or smaller, the samples summed in reverse order (for the
    final weights and outputs, the largest change in the array, as the dynamics move roundings
    from one weight to another) -- lanes so chaotic that a float32 ulp of the initial weights
    moves the float64 reference's losses by more than 1e-3 are left out of that comparison:
    float32 sums are rounded differently here (sequential) and there (pairwise, BLAS), so the
    two float32 results drift apart by as much as each drifts from float64, not more. Shares of outputs
    past 0.5 or of |z| past 4 must agree wherever no value lies within 1e-3 of its threshold
    and float32 NumPy agrees with float64 (with and without the nudge).
    Thresholds of the criterion are moved out of the way (criterion 'loss' with tol 1e-12,
    no early stop), so the integer statistics must agree, except in lanes whose float32 loss
    comes near float32's overflow, where rounding decides the update that overflows."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False, criterion="loss", tol=1e-12) for h in hyper]
    with np.errstate(all="ignore"):
        r, w = run_batch(X, Y, nets, hyper, epochs, ck, np.float32)
        compare_float32(r, w, X, Y, nets, hyper, epochs, ck)


def _departs(losses, truth):
    """At some state the loss differs from the true one by more than 1e-3 (1 + |loss|)."""
    losses, truth = np.asarray(losses, float), np.asarray(truth, float)
    n = min(losses.size, truth.size)
    return bool(np.any(np.abs(losses[:n] - truth[:n]) > 1e-3 * (1 + np.abs(truth[:n]))))


def _near_float32_overflow(runs, margin=1e-6):
    """A loss of one of these float32 runs came within `margin` of float32's largest value (about 2.5
    updates of a loss growing 300-fold a step): there, a sum of squares rounded in another order (the
    kernel's sequential sums, NumPy's pairwise ones) overflows one update sooner or later."""
    limit = margin * float(np.finfo(np.float32).max)
    for run in runs:
        losses = np.asarray(run["losses"], float)
        if np.any(np.abs(losses[np.isfinite(losses)]) > limit):
            return True
    return False


def compare_float32(r, w, X, Y, nets, hyper, epochs, ck):
    """Each float32 lane of `r` (final weights `w`) against the float64 reference, as
    `test_float32_kernel_is_as_accurate_as_float32_numpy` describes."""
    with np.errstate(all="ignore"):
        for j, (net, h) in enumerate(zip(nets, hyper)):
            net32 = tuple(np.asarray(p, np.float32) for p in net)
            ref64 = train_reference(X, Y, *net, epochs, checkpoints=ck, **h)
            ref32 = train_reference(X, Y, *net32, epochs, checkpoints=ck, **h)
            nudged = [train_reference(X, Y, *(np.nextafter(p, np.float32(to)) for p in net32), epochs,
                                      checkpoints=ck, **h) for to in (np.inf, -np.inf)]
            # the kernel's own roundings at every step, not only at the first: its exp (and tanh) a float32
            # ulp off NumPy's, its sums over samples in another order. Where training passes near a saddle
            # (weights decayed to ~0, gradients of cancelling terms) and leaves it, these grow tenfold and
            # more while a nudge of the initial weights has long been damped.
            for sign in (1, -1):
                with _exp_off_by_one_ulp(sign, 2.0**-23):
                    nudged.append(train_reference(X, Y, *net32, epochs, checkpoints=ck, **h))
            if not h.get("batch_size"):
                backwards = train_reference(X[::-1], Y[::-1], *net32, epochs, checkpoints=ck, **h)
                nudged.append(dict(backwards, outputs=backwards["outputs"][::-1]))
            if _near_float32_overflow([ref32] + nudged):
                continue  # which update overflows first is decided by rounding: nothing to compare
            assert r.diverged[j] == ref32["diverged"]
            assert r.epochs_run[j] == ref32["epochs_run"]
            # float32 overflows first where losses grow without bound (in the reference, or in a probe of it
            # one ulp away, whose missing states would leave no bound to compare with)
            if ref32["diverged"] or ref64["diverged"] or any(n["diverged"] for n in nudged):
                continue
            # Chaotic training (a large lr bouncing a BCE net between saturated states): a float32 ulp
            # of the initial weights moves even the float64 trajectory anywhere, or float32 NumPy's own
            # trajectory leaves float64's at some state (and may or may not find its way back by the
            # last), so no float32 result can be held to it; only the integer statistics above are compared.
            chaos = [train_reference(X, Y, *(np.asarray(p) * (1 + f * 2.0**-23) for p in net), epochs,
                                     checkpoints=ck, **h) for f in (1, -1)]
            if any(_departs(c["losses"], ref64["losses"]) for c in chaos + [ref32]):
                continue
            got = lane(r, j)
            got.update(zip(("W1", "b1", "W2", "b2"), (p[..., j] for p in w)))
            biases = ["b1", "b2"] if h.get("bias", True) else []
            for k in CONTINUOUS + ["outputs", "checkpoint_loss", "W1", "W2"] + biases:
                truth = np.asarray(ref64[k], float)
                spread = np.max([np.abs(np.asarray(n[k], float) - np.asarray(ref32[k], float)) for n in nudged],
                                axis=0)
                if k != "checkpoint_loss":
                    # the final weights (and outputs) move together: a rounding that one probe puts into one
                    # weight, the kernel's roundings may put into another (adaptive steps of noise/|noise| at
                    # a solution, where the loss no longer says so)
                    spread = np.max(spread, initial=0.0)
                allowed = 10 * np.abs(np.asarray(ref32[k], float) - truth) + 10 * spread + 1e-4 * (1 + np.abs(truth))
                assert np.all(np.abs(np.asarray(got[k], float) - truth) <= allowed), k
            if any(h.get(k, v) != v for k, v in DEFAULT_MODEL.items()):
                continue  # the thresholds below are the default sigmoid network's
            tracked = all(np.allclose(got[p], ref64[p], rtol=0, atol=1e-5) for p in ("W1", "b1", "W2", "b2"))
            z_start = _z(X, *net)
            z_end = _z(X, ref64["W1"], ref64["b1"], ref64["W2"], ref64["b2"])
            clear = {
                "start": np.all(np.abs(np.abs(np.concatenate([z.ravel() for z in z_start])) - 4) > 1e-3),
                "end": np.all(np.abs(np.abs(np.concatenate([z.ravel() for z in z_end])) - 4) > 1e-3),
                "accuracy": np.all(np.abs(ref64["outputs"] - 0.5) > 1e-3),
            }
            for k, when in (("sat_hidden_start", "start"), ("sat_output_start", "start"),
                            ("sat_hidden_end", "end"), ("sat_output_end", "end"), ("accuracy", "accuracy")):
                if clear[when] and tracked and ref64[k] == ref32[k] and all(n[k] == ref32[k] for n in nudged):
                    assert got[k] == ref64[k], k


@settings(max_examples=30)
@given(problems(max_lanes=9), st.sampled_from([1, 2, 3, 8]), st.sampled_from([1, 2]))
def test_lane_results_are_bitwise_independent_of_batch_tile_and_threads(problem, tile, threads):
    """Each lane of a mixed batch equals, bit for bit, the same lane trained alone."""
    assert_lanes_are_those_trained_alone(problem, tile, threads)


def assert_lanes_are_those_trained_alone(problem, tile, threads):
    """Every statistic and final weight of each lane of `problem` trained as one call (this tile and threads)
    equals, bit for bit, that of the lane trained alone."""
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


@settings(max_examples=40)
@given(problems(max_lanes=8), st.sampled_from([np.float64, np.float32]), st.sampled_from([0.1, 1.0, 10.0, 1e3]))
def test_trainability_score_is_that_of_the_kernels_own_losses(problem, dtype, rate):
    """The score the kernel accumulates equals, bit for bit, the plain NumPy score
    (`reference.trainability_scores`) of the losses the kernel itself reports at every state: the
    same ratios added in the same order, whatever the lane's stop (divergence, early stop) and dtype.
    The learning rates are multiplied by `rate` so that runs diverge too."""
    X, Y, nets, hyper, epochs, _ = problem
    hyper = [dict(h, **{k: h[k] * rate for k in ("lr", "lr_hidden", "lr_output") if k in h}) for h in hyper]
    every_state = np.arange(epochs + 1)
    with np.errstate(all="ignore"):
        r, _ = run_batch(X, Y, nets, hyper, epochs, every_state, dtype)
    for j in range(len(nets)):
        reached = r.checkpoint_loss[:r.epochs_run[j] + 1, j]
        want = reference.trainability_scores(reached, epochs)
        for k, v in want.items():
            assert getattr(r, k)[j] == v or (np.isnan(v) and np.isnan(getattr(r, k)[j])), (k, j, hyper[j])


# --- behaviour ------------------------------------------------------------------------------

def test_diverged_lane_stops_and_does_not_poison_others():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(1, 1000.0), nb.legacy_normal(42))
    with np.errstate(all="ignore"):
        r = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10000, lr=0.1, loss="bce", bce_eps=[0.0, 1e-8])
    assert r.diverged.tolist() == [True, False]
    assert r.epochs_run.tolist() == [0, 10000]
    assert r.converged.tolist() == [False, True]
    assert np.all(np.isfinite(W1[..., 1]))


def check_early_stop(train_fn, n_nets, lr, epochs):
    """XOR nets (x8 init on every other seed: many stall) with and without early stop through
    `train_fn`: the same epoch_converged, epochs_run stops there, converged lanes stay converged, and
    a lane that never converges trains to the end bit-identically. Returns the early-stop result."""
    nets = [nb.legacy_normal(s, 1.0 if s % 2 else 8.0) for s in range(n_nets)]
    full, wf = run_batch(nb.XOR_X, nb.XOR_Y, nets, [dict(lr=lr)] * n_nets, epochs, [], np.float64, train_fn)
    early, we = run_batch(nb.XOR_X, nb.XOR_Y, nets, [dict(lr=lr, early_stop=True)] * n_nets, epochs, [],
                          np.float64, train_fn)
    conv = full.epoch_converged >= 0
    assert conv.any() and not conv.all()
    np.testing.assert_array_equal(early.epoch_converged, full.epoch_converged)
    np.testing.assert_array_equal(early.epochs_run, np.where(conv, full.epoch_converged, epochs))
    assert early.converged[conv].all()
    np.testing.assert_array_equal(we[0][..., ~conv], wf[0][..., ~conv])
    return early


def test_early_stop_reports_epochs_run_and_keeps_the_converged_state():
    check_early_stop(train, 16, 0.5, 3000)


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


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.sampled_from([0, 1, 2, 3]), st.sampled_from([0, 1]),
       st.sampled_from([np.float64, np.float32]), st.booleans())
def test_saturation_of_a_tile_at_once_is_that_of_each_lane(seed, active, act, out, dtype, odd):
    """The kernel's tile-wide count of saturated and dead units (`_saturation_tile`, at the start and when many
    lanes stop) gives each lane exactly what the lane-by-lane count gives: zero inputs, inf and NaN weights
    included."""
    from kernels.kernel import _saturation, _saturation_tile

    rng = np.random.default_rng(seed)
    n_samples, n_inputs, hidden, tile = rng.integers(1, 7), rng.integers(1, 4), rng.integers(1, 6), 12
    X = (rng.integers(0, 2, (n_samples, n_inputs)) * rng.uniform(-3, 3, (n_samples, n_inputs))).astype(dtype)
    w1, b1, w2 = (rng.normal(0, 3, shape).astype(dtype) for shape in
                  ((n_inputs, hidden, tile), (hidden, tile), (hidden, tile)))
    b2 = rng.normal(0, 3, tile).astype(dtype)
    if odd:
        w1[0, 0, 0], b2[min(1, active - 1)], b1[0, active - 1] = np.inf, -np.inf, np.nan
    one, s2 = dtype(1), dtype(0.5 if out else 1.0)
    sat = np.full((3, tile), -1.0)
    _saturation_tile(X, w1, b1, w2, b2, active, s2, act, out, one, sat)
    for j in range(active):
        assert tuple(sat[:, j]) == _saturation(X, w1, b1, w2, b2, j, s2, act, out, one), j
    assert np.all(sat[:, active:] == -1.0)


def _same_results_without_outputs(train_fn):
    """train_fn with outputs=False: an (0, L) outputs array, every other field and the final weights the
    same bits as with outputs (the 16 samples of a Gaussian problem, and the XOR table)."""
    rng = np.random.default_rng(3)
    X16 = rng.standard_normal((16, 3))
    for X, Y in ((nb.XOR_X, nb.XOR_Y), (X16, rng.uniform(0, 1, 16))):
        W1, W2 = rng.standard_normal((X.shape[1], 5, 9)), rng.standard_normal((5, 9))
        runs = []
        for keep in (True, False):
            lanes_ = [W1.copy(), np.zeros((5, 9)), W2.copy(), np.zeros(9)]
            runs.append((train_fn(X, Y, *lanes_, 30, lr=np.linspace(0.1, 3, 9), checkpoints=4, outputs=keep), lanes_))
        (full, w_full), (bare, w_bare) = runs
        assert full.outputs.shape == (X.shape[0], 9) and bare.outputs.shape == (0, 9)
        for name in TrainResult.__dataclass_fields__:
            if name != "outputs" and getattr(full, name) is not None:
                np.testing.assert_array_equal(getattr(bare, name), getattr(full, name), err_msg=name)
        for a, b in zip(w_full, w_bare):
            np.testing.assert_array_equal(a, b)


def test_outputs_false_keeps_no_outputs_and_changes_nothing_else():
    _same_results_without_outputs(train)

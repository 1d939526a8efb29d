"""The kernels' curvature diagnostics (issue 18) against the NumPy reference, and themselves.

`train(..., diagnostics=True)` computes, per lane and state, the sharpness with kernels/hessian.py (exact
Hessian-vector products, LAPACK or Lanczos); the reference (`train_reference(..., diagnostics=True)`) trains
the same network in NumPy and takes the eigenvalues of a Hessian by central differences of its analytic
gradient (kernels/curvature.py). Over a few updates at moderate rates the two trajectories agree to
rounding, so the diagnostics must agree to the issue's relative 1e-6 in float64. And the kernels agree with
themselves: diagnostics never change what is trained, and a lane's diagnostics do not depend on its batch,
tile or thread."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import reference as ref
from kernels import train
from kernels.curvature import edge_threshold
from kernels.vocab import OPTIMIZERS
from tests.test_kernel import lanes, run_batch

FLOATS = ("sharpness_init", "sharpness_final", "sharpness_max", "ntk_lambda0", "lr_lambda0", "loss_peak_ratio")
EXACT = ("epoch_sharpness_max", "catapult")
RATES = [0.01, 0.1, 0.5]


@st.composite
def diagnostic_problems(draw, max_lanes=4, float32=False):
    """(X, Y, nets, hyper, epochs, ck): a few lanes of one call, any model and update scheme, moderate
    weights and rates and few updates, so that the kernel's and the reference's states agree to rounding
    and the reference's finite differences stay accurate."""
    n_inputs, hidden, n_samples = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    activation = draw(st.sampled_from(["sigmoid", "tanh", "relu", "identity"]))
    output = draw(st.sampled_from(["sigmoid", "identity"]))
    model = dict(activation=activation, output=output, bias=draw(st.booleans()),
                 scaling="standard" if float32 else draw(st.sampled_from(["standard", "ntk", "mean-field"])),
                 reduction=draw(st.sampled_from(["sum", "mean"])))
    optimizer = draw(st.sampled_from(OPTIMIZERS))
    batch_size = draw(st.sampled_from([0, 0, 0, 2]))
    call = dict(optimizer=optimizer, batch_size=batch_size, shuffle=batch_size > 0 and draw(st.booleans()))
    X = rng.uniform(-1.5, 1.5, (n_samples, n_inputs))
    Y = rng.standard_normal(n_samples) if output == "identity" else rng.uniform(0.1, 0.9, n_samples)
    epochs = draw(st.integers(0, 12))
    nets, hyper = [], []
    for _ in range(draw(st.integers(1, max_lanes))):
        scale = draw(st.sampled_from([0.3, 0.7, 1.2]))
        nets.append((rng.standard_normal((n_inputs, hidden)) * scale, rng.standard_normal(hidden) * scale,
                     rng.standard_normal(hidden) * scale, float(rng.standard_normal() * scale)))
        rates = dict(lr_hidden=draw(st.sampled_from(RATES)), lr_output=draw(st.sampled_from(RATES))) \
            if draw(st.booleans()) else dict(lr=draw(st.sampled_from(RATES)))
        h = dict(model, **call, **rates, loss="bce" if output == "sigmoid" and draw(st.booleans()) else "mse",
                 momentum=draw(st.sampled_from([0.0, 0.5, 0.9])) if optimizer in ("gd", "nesterov") else 0.0,
                 weight_decay=draw(st.sampled_from([0.0, 0.0, 0.1])), decay_biases=draw(st.booleans()),
                 shuffle_seed=draw(st.integers(0, 2**32 - 1)), criterion="loss", tol=0.05,
                 early_stop=draw(st.booleans()))
        if optimizer not in ("gd", "nesterov"):
            h = {k: v * 0.1 if k in ("lr", "lr_hidden", "lr_output") else v for k, v in h.items()}
        hyper.append(h)
    ck = np.unique(np.array(draw(st.lists(st.integers(0, epochs), max_size=4)), dtype=np.int64))
    return X, Y, nets, hyper, epochs, ck


def reference_of(X, Y, net, h, epochs, ck, dtype=np.float64):
    kw = {k: v for k, v in h.items() if k not in ("lr", "lr_hidden", "lr_output")}
    rates = dict(lr_hidden=h.get("lr_hidden", h.get("lr")), lr_output=h.get("lr_output", h.get("lr")))
    W1, b1, W2, b2 = (np.asarray(a, dtype) for a in net)
    return ref.train_reference(X, Y, W1, b1, W2, b2, epochs, checkpoints=ck, diagnostics=True, **rates, **kw)


def near_the_edge(want, h):
    """Whether a state's lr x sharpness lies within 1e-6 of its threshold, where rounding may count it or not
    (with one rate; per-layer rates: the reference's weighted sharpness is not returned, assume not)."""
    threshold = edge_threshold(h["optimizer"], h["momentum"])
    if threshold is None or "lr" not in h:
        return False
    return bool(np.any(np.abs(h["lr"] * want["sharpness"][:-1] / threshold - 1) < 1e-6))


START = ("sharpness_init", "ntk_lambda0", "lr_lambda0")  # of state 0, whose parameters are the same in both


def comparable_later(result, j, want):
    """Whether the later states of the kernel's lane j can be held to the reference at 1e-6: the two trained
    the same states to rounding (losses at the end within 1e-10 relative; a run that grows unstable amplifies
    the rounding differences of any two implementations, tests/test_kernel.py's chaotic lanes), and the run
    stayed moderate (every sharpness below 1e3: where weights have grown large, the reference's central
    differences, steps of 1e-5 |theta|, lose the accuracy)."""
    a, b = result.final_loss[j], want["final_loss"]
    same = (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-10 * max(1.0, abs(b))
    sharp = want["sharpness"]
    return bool(same and np.all(np.isfinite(sharp)) and np.all(np.abs(sharp) < 1e3))


def assert_diagnostics_agree(got, want, h, rtol, atol, later=True):
    """The diagnostics of the start; with `later`, those of every state too."""
    for name in START if not later else FLOATS:
        a, b = got[name], want[name]
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=rtol, abs=atol), (name, a, b)
    if not later:
        return
    assert got["catapult"] == want["catapult"]
    # The state of the largest sharpness: the reference's, or one whose sharpness ties with it to rounding.
    state = got["epoch_sharpness_max"]
    assert state == want["epoch_sharpness_max"] or (
        state >= 0 and want["sharpness"][state] == pytest.approx(want["sharpness_max"], rel=rtol, abs=atol)), \
        (state, want["epoch_sharpness_max"])
    steps = want["steps_above_edge"]
    if steps is None:
        assert np.isnan(got["steps_above_edge"])
    elif not near_the_edge(want, h):
        assert got["steps_above_edge"] == steps
    np.testing.assert_allclose(got["checkpoint_sharpness"], want["checkpoint_sharpness"], rtol=rtol, atol=atol)


def diagnostics_of(result, j):
    names = FLOATS + EXACT + ("steps_above_edge",)
    return dict({name: getattr(result, name)[j] for name in names},
                checkpoint_sharpness=result.checkpoint_sharpness[:, j])


@settings(max_examples=60, deadline=None)
@given(diagnostic_problems())
def test_float64_diagnostics_match_the_reference(problem):
    """Every diagnostic of every lane: relative 1e-6 (absolute 1e-8 for values near 0, the accuracy of the
    reference's central differences), counts and states exactly; those after the start where the two
    trained the same moderate states (`comparable_later`: most lanes, every lane of a stable run)."""
    X, Y, nets, hyper, epochs, ck = problem
    with np.errstate(all="ignore"):
        result, _ = run_batch(X, Y, nets, hyper, epochs, ck, np.float64, diagnostics=True)
        for j, (net, h) in enumerate(zip(nets, hyper)):
            want = reference_of(X, Y, net, h, epochs, ck)
            later = comparable_later(result, j, want)
            assert_diagnostics_agree(diagnostics_of(result, j), want, h, rtol=1e-6, atol=1e-8, later=later)


@settings(max_examples=20, deadline=None)
@given(diagnostic_problems(float32=True))
def test_float32_diagnostics_are_the_curvature_of_the_float32_states(problem):
    """The curvature of a float32 state is taken in float64 of its float32 parameters and inputs: at the
    start, where both hold the same float32 parameters, it agrees with the float32 reference's to 1e-3 (the
    rounding of the float32 data and factors). Later float32 states differ between any two implementations
    by more than the curvature's tolerance can absorb."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False) for h in hyper]
    with np.errstate(all="ignore"):
        result, _ = run_batch(X, Y, nets, hyper, epochs, ck, np.float32, diagnostics=True)
        for j, (net, h) in enumerate(zip(nets, hyper)):
            want = reference_of(X, Y, net, h, epochs, ck, np.float32)
            got = diagnostics_of(result, j)
            for name in START:
                assert got[name] == pytest.approx(want[name], rel=1e-3, abs=1e-5), (name, got[name], want[name])


@settings(max_examples=25, deadline=None)
@given(diagnostic_problems(max_lanes=6), st.sampled_from([1, 2, 5]), st.sampled_from([1, 2]))
def test_diagnostics_never_change_training_and_are_bitwise_independent_of_tile_and_threads(problem, tile, threads):
    """The same call with and without diagnostics trains bit for bit the same; with them, each lane's
    diagnostics are those of the lane trained alone, bit for bit, whatever the tile and the threads."""
    X, Y, nets, hyper, epochs, ck = problem
    with np.errstate(all="ignore"):
        plain, w_plain = run_batch(X, Y, nets, hyper, epochs, ck, np.float64, tile=tile, threads=threads)
        diag, w_diag = run_batch(X, Y, nets, hyper, epochs, ck, np.float64, tile=tile, threads=threads,
                                 diagnostics=True)
        for a, b in zip(w_plain, w_diag):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(plain.final_loss, diag.final_loss)
        np.testing.assert_array_equal(plain.checkpoint_loss, diag.checkpoint_loss)
        assert plain.sharpness_init is None
        for j, (net, h) in enumerate(zip(nets, hyper)):
            alone, _ = run_batch(X, Y, [net], [h], epochs, ck, np.float64, diagnostics=True)
            for name in FLOATS + EXACT + ("steps_above_edge", "checkpoint_sharpness"):
                np.testing.assert_array_equal(getattr(alone, name)[..., 0], getattr(diag, name)[..., j], name)


def teacher():
    """examples/edge_of_stability.toml's data: a 4-8-1 tanh teacher on 64 Gaussian samples."""
    from sweep.datasets import generate

    return generate({"generator": "teacher", "samples": 64, "inputs": 4, "hidden": 8, "activation": "tanh",
                     "seed": 0, "noise": 0.0})


@pytest.mark.slow
def test_gradient_descent_sharpens_progressively_and_hovers_at_the_edge_of_stability():
    """A property of the dynamics, not of one implementation (Cohen et al. 2021), on the example's network
    (4-8-1 tanh student, initial scale 0.3, seeds 0 and 3): at lr 1.5 the sharpness of every state after
    the first 1,000 lies within 4% of 2 / lr (their median within 1%) while the loss falls, with a thousand
    steps above the edge or more; at lr 0.5 (2 / lr = 4) it rises from the start (progressive sharpening),
    never reaching the edge."""
    from kernels.init import initial_lanes

    X, Y = teacher()
    ck = np.arange(0, 4001, 100)
    for lr, seed in ((1.5, 0), (1.5, 3), (0.5, 3)):
        W1, b1, W2, b2 = initial_lanes(np.array(["normal"], object), np.array([seed]), np.array([0.3]),
                                       np.array([0.0]), 4, 8, np.float64)
        r = train(X, Y, W1, b1, W2, b2, 4000, lr=lr, activation="tanh", output="identity", reduction="mean",
                  diagnostics=True, checkpoints=ck)
        late = r.checkpoint_sharpness[10:, 0]
        assert r.final_loss[0] < 1e-3 and not r.diverged[0]
        if lr == 1.5:
            assert np.all(np.abs(late * lr / 2 - 1) < 0.04) and abs(np.median(late) * lr / 2 - 1) < 0.01, late
            assert r.steps_above_edge[0] >= 1000
        else:
            assert r.steps_above_edge[0] == 0 and r.sharpness_max[0] < 2 / lr
            assert r.sharpness_final[0] > 1.3 * r.sharpness_init[0]


def test_a_diverging_lane_has_nan_curvature_after_it_blows_up_and_infinite_peak():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (8, 2))
    Y = rng.standard_normal(8)
    W1, b1, W2, b2 = lanes((rng.standard_normal((2, 4)), np.zeros(4), rng.standard_normal(4), 0.0))
    r = train(X, Y, W1, b1, W2, b2, 400, lr=50.0, activation="tanh", output="identity", diagnostics=True,
              checkpoints=[0, 400])
    assert r.diverged[0] and np.isinf(r.loss_peak_ratio[0]) and not r.catapult[0]
    assert np.isfinite(r.sharpness_init[0]) and np.isnan(r.checkpoint_sharpness[1, 0])
    assert r.steps_above_edge[0] >= 1 and r.epoch_sharpness_max[0] <= r.epochs_run[0]


def test_the_lanczos_path_matches_the_reference_in_the_kernel():
    """Past 64 parameters (a 3-16-1 network with biases: 81) the kernel's sharpness comes from Lanczos: every
    diagnostic of lanes of gd with momentum, per-layer rates and nesterov with weight decay agrees with the
    reference to relative 1e-6, over a few updates."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (10, 3))
    Y = rng.standard_normal(10)
    nets = [(rng.standard_normal((3, 16)) * 0.7, rng.standard_normal(16) * 0.3, rng.standard_normal(16) * 0.5,
             0.1) for _ in range(3)]
    model = dict(activation="tanh", output="identity", reduction="mean", criterion="loss", tol=1e-6, optimizer="gd")

    def lane(lr_hidden, lr_output, momentum=0.0, weight_decay=0.0):  # every lane's dict has the same keys
        return dict(model, lr_hidden=lr_hidden, lr_output=lr_output, momentum=momentum, weight_decay=weight_decay,
                    decay_biases=True)

    hyper = [lane(0.5, 0.5, momentum=0.5), lane(0.2, 1.5), lane(0.3, 0.3, weight_decay=0.1)]
    ck = np.array([0, 2, 5])
    result, _ = run_batch(X, Y, nets, hyper, 5, ck, np.float64, diagnostics=True)
    for j, (net, h) in enumerate(zip(nets, hyper)):
        want = reference_of(X, Y, net, h, 5, ck)
        assert_diagnostics_agree(diagnostics_of(result, j), want, h, rtol=1e-6, atol=1e-9)
    nesterov = dict(model, optimizer="nesterov", lr=0.2, momentum=0.9, weight_decay=0.05)
    with np.errstate(all="ignore"):
        result, _ = run_batch(X, Y, nets[:1], [nesterov], 5, ck, np.float64, diagnostics=True)
        want = reference_of(X, Y, nets[0], nesterov, 5, ck)
    assert_diagnostics_agree(diagnostics_of(result, 0), want, nesterov, rtol=1e-6, atol=1e-9)


def test_a_non_finite_initial_loss_peaks_at_infinity_as_the_reference():
    """A first loss that is not finite (weights of 1e200 through identity units): loss_peak_ratio is inf in the
    kernel as in the reference (inf / inf would be NaN)."""
    X, Y = np.array([[1.0]]), np.array([0.0])
    net = (np.full((1, 1), 1e200), np.zeros(1), np.full(1, 1e200), 0.0)
    h = dict(activation="identity", output="identity", optimizer="gd", lr=0.1)
    with np.errstate(all="ignore"):
        result, _ = run_batch(X, Y, [net], [h], 3, np.array([0]), np.float64, diagnostics=True)
        want = reference_of(X, Y, net, h, 3, np.array([0]))
    assert np.isinf(want["loss_peak_ratio"]) and np.isinf(result.loss_peak_ratio[0])

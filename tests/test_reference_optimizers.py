"""The reference's optimizers, weight decay, minibatches and shuffle (issue 17, step 1): hand computations,
equivalences that must hold, finite differences of the L2 objective, and torch.optim when it is installed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.reference import OPTIMIZERS, forward, gradients, loss_value, shuffled_order, train_reference
from tests import notebooks as nb

OUTPUTS = ("W1", "b1", "W2", "b2", "outputs", "checkpoint_loss", "losses", "epoch_converged", "converged",
           "epochs_run", "final_loss", "min_loss", "final_mse", "accuracy", "sat_hidden_start", "sat_output_start",
           "sat_hidden_end", "sat_output_end", "dead_hidden_start", "dead_hidden_end", "grad_norm", "diverged",
           "loss_ratio_sum", "loss_ratio_tail", "trainability", "epoch_diverged")
WEIGHTS = ("W1", "b1", "W2", "b2")


def assert_runs_equal(a, b, keys=OUTPUTS):
    """Every output bit for bit (NaN equals NaN, None equals None)."""
    assert set(keys) <= set(a) and set(a) == set(b)
    for k in keys:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k, strict=True)


def problem(seed, N=5, D=3, H=4, dtype=np.float64):
    """Random data with targets in (0, 1) and a random network (W1, b1, W2, b2) in the caller's shapes."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (N, D))
    Y = rng.uniform(0.05, 0.95, N)
    net = (rng.normal(0, 1, (D, H)).astype(dtype), rng.normal(0, 0.5, H), rng.normal(0, 1, H), rng.normal(0, 0.5))
    return X, Y, net


# --- the first updates of each optimizer on a 1-1-1 network, by hand ----------------------------

HAND_X, HAND_Y = [0.5, -1.0, 2.0, 0.25], [1.0, 0.0, 1.0, 0.0]
HAND_NET = {"w1": 0.3, "b1": -0.2, "w2": 0.8, "b2": 0.1}
LR = {"w1": 0.4, "b1": 0.4, "w2": 0.7, "b2": 0.7}  # lr_hidden 0.4, lr_output 0.7
# Hyperparameters away from the defaults (betas swapped would show), and an eps that matters next to |g| ~ 0.05.
MU, BETA1, BETA2, EPS, WD = 0.9, 0.8, 0.95, 1e-3, 0.1


def sig(z):
    return 1 / (1 + math.exp(-z))


def hand_gradient(p, rows):
    """The project's gradient (MSE, reduction "sum", sigmoid units) of the 1-1-1 network on the given samples:
    delta2 = (a2 - y) a2 (1 - a2) and delta1 = delta2 w2 a1 (1 - a1), summed over the samples."""
    g = dict.fromkeys(p, 0.0)
    for n in rows:
        a1 = sig(HAND_X[n] * p["w1"] + p["b1"])
        a2 = sig(a1 * p["w2"] + p["b2"])
        d2 = (a2 - HAND_Y[n]) * a2 * (1 - a2)
        d1 = d2 * p["w2"] * a1 * (1 - a1)
        g["w1"] += HAND_X[n] * d1
        g["b1"] += d1
        g["w2"] += a1 * d2
        g["b2"] += d2
    return g


def hand_run(optimizer, updates, batch_size=0, wd=0.0, decay_biases=False, momentum=MU):
    """PyTorch's algorithms as their docs write them, in Python floats, one parameter at a time: t counts the
    updates, the bias corrections are powers, the batches are consecutive samples in order."""
    n = len(HAND_X)
    size = batch_size or n
    batches = [range(s, min(s + size, n)) for s in range(0, n, size)]
    p = dict(HAND_NET)
    v, m, s = dict.fromkeys(p, 0.0), dict.fromkeys(p, 0.0), dict.fromkeys(p, 0.0)
    for t in range(1, updates + 1):
        g = hand_gradient(p, batches[(t - 1) % len(batches)])
        for k in p:
            lam = wd if (k[0] == "w" or decay_biases) else 0.0
            gk, lr = g[k], LR[k]
            if optimizer == "adamw":
                p[k] = p[k] - lr * lam * p[k]
            else:
                gk = gk + lam * p[k]
            if optimizer in ("gd", "nesterov"):
                if momentum:
                    v[k] = gk if t == 1 else momentum * v[k] + gk
                    gk = gk + momentum * v[k] if optimizer == "nesterov" else v[k]
                p[k] = p[k] - lr * gk
            elif optimizer in ("adam", "adamw"):
                m[k] = BETA1 * m[k] + (1 - BETA1) * gk
                s[k] = BETA2 * s[k] + (1 - BETA2) * gk ** 2
                m_hat, s_hat = m[k] / (1 - BETA1 ** t), s[k] / (1 - BETA2 ** t)
                p[k] = p[k] - lr * m_hat / (math.sqrt(s_hat) + EPS)
            else:
                s[k] = BETA2 * s[k] + (1 - BETA2) * gk ** 2
                p[k] = p[k] - lr * gk / (math.sqrt(s[k]) + EPS)
    return p


def reference_run(optimizer, epochs, momentum=MU, **kw):
    r = train_reference(np.array(HAND_X).reshape(-1, 1), np.array(HAND_Y), np.array([[HAND_NET["w1"]]]),
                        np.array([HAND_NET["b1"]]), np.array([HAND_NET["w2"]]), HAND_NET["b2"], epochs,
                        lr_hidden=LR["w1"], lr_output=LR["w2"], optimizer=optimizer, momentum=momentum,
                        beta1=BETA1, beta2=BETA2, opt_eps=EPS, **kw)
    return {"w1": r["W1"][0, 0], "b1": r["b1"][0], "w2": r["W2"][0], "b2": r["b2"]}


def assert_params_close(got, want, rtol=1e-12):
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=rtol, abs=1e-15), k


def test_first_updates_in_closed_form():
    """Step 1 from the update forms by hand: v = g for the momentum methods, m / (1 - beta1) = g and
    s / (1 - beta2) = g^2 for Adam, s = (1 - alpha) g^2 for RMSprop."""
    g = hand_gradient(HAND_NET, range(4))
    p0 = HAND_NET
    want = {
        "gd": {k: p0[k] - LR[k] * g[k] for k in p0},
        "nesterov": {k: p0[k] - LR[k] * (1 + MU) * g[k] for k in p0},
        "adam": {k: p0[k] - LR[k] * g[k] / (abs(g[k]) + EPS) for k in p0},
        "adamw": {k: p0[k] * (1 - LR[k] * WD * (k[0] == "w")) - LR[k] * g[k] / (abs(g[k]) + EPS) for k in p0},
        "rmsprop": {k: p0[k] - LR[k] * g[k] / (math.sqrt(1 - BETA2) * abs(g[k]) + EPS) for k in p0},
    }
    for optimizer, p1 in want.items():
        wd = WD if optimizer == "adamw" else 0.0
        assert_params_close(reference_run(optimizer, 1, weight_decay=wd), p1)
        assert all(abs(p1[k] - p0[k]) > 1e-3 for k in p0)  # every parameter moved: the check has teeth


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("wd,decay_biases", [(0.0, False), (WD, False), (WD, True)])
def test_first_three_updates_by_hand(optimizer, wd, decay_biases):
    for updates in (1, 2, 3):
        want = hand_run(optimizer, updates, wd=wd, decay_biases=decay_biases)
        assert_params_close(reference_run(optimizer, updates, weight_decay=wd, decay_biases=decay_biases), want)


@pytest.mark.parametrize("optimizer", ["gd", "nesterov"])
def test_momentum_methods_without_momentum_by_hand(optimizer):
    want = hand_run(optimizer, 3, wd=WD, momentum=0.0)
    assert_params_close(reference_run(optimizer, 3, momentum=0.0, weight_decay=WD), want)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_minibatch_updates_by_hand(optimizer):
    """Batches of 3 over 4 samples (3, then 1), 2 epochs: 4 updates, t = 1..4 in Adam's bias correction."""
    want = hand_run(optimizer, 4, batch_size=3, wd=WD)
    assert_params_close(reference_run(optimizer, 2, weight_decay=WD, batch_size=3), want)
    online = hand_run(optimizer, 8, batch_size=1)
    assert_params_close(reference_run(optimizer, 2, batch_size=1), online)


# --- defaults and equivalences ----------------------------------------------------------------------

DEFAULT_OPTIONS = dict(optimizer="gd", beta1=0.9, beta2=0.999, opt_eps=1e-8, weight_decay=0.0, decay_biases=False,
                       batch_size=0, shuffle=False, shuffle_seed=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("bias", [True, False])
def test_explicit_defaults_change_nothing(dtype, momentum, bias):
    W1, b1, W2, b2 = nb.legacy_normal(11)
    args = (nb.XOR_X, nb.XOR_Y, W1.astype(dtype), b1, W2, b2, 300)
    kw = dict(lr=0.5, momentum=momentum, bias=bias, checkpoints=(0, 7, 300), activation="tanh")
    assert_runs_equal(train_reference(*args, **kw), train_reference(*args, **kw, **DEFAULT_OPTIONS))
    # The unused hyperparameters of gd change nothing either.
    ignored = train_reference(*args, **kw, beta1=0.5, beta2=0.5, opt_eps=0.1, shuffle=True, shuffle_seed=9)
    assert_runs_equal(train_reference(*args, **kw), ignored)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_default_gd_is_the_heavy_ball_loop_bitwise(momentum):
    """Today's arithmetic: v = momentum v + g, p -= lr v (p -= lr g without momentum), per layer rate."""
    X, Y, (W1, b1, W2, b2) = problem(1)
    r = train_reference(X, Y, W1, b1, W2, b2, 40, lr_hidden=0.9, lr_output=0.3, momentum=momentum)
    y = Y.reshape(-1, 1)
    params = [W1.copy(), b1.reshape(1, -1).copy(), W2.reshape(-1, 1).copy(), np.full((1, 1), b2)]
    velocity = [np.zeros_like(p) for p in params]
    for _ in range(40):
        _, a1, _, a2 = forward(X, *params)
        for p, v, g, lr in zip(params, velocity, gradients(X, y, a1, a2, params[2], "mse", 1e-8),
                               (0.9, 0.9, 0.3, 0.3)):
            if momentum:
                v[...] = momentum * v + g
                p -= lr * v
            else:
                p -= lr * g
    for got, want in zip((r["W1"], r["b1"], r["W2"], r["b2"]), params):
        np.testing.assert_array_equal(got, want.reshape(np.shape(got)))


@settings(max_examples=25)
@given(seed=st.integers(0, 2**16), wd=st.sampled_from([0.0, 0.05]), batch_size=st.integers(0, 6),
       decay_biases=st.booleans(), reduction=st.sampled_from(["sum", "mean"]))
def test_nesterov_without_momentum_is_gd_bitwise(seed, wd, batch_size, decay_biases, reduction):
    X, Y, net = problem(seed)
    kw = dict(lr=0.7, momentum=0.0, weight_decay=wd, batch_size=batch_size, decay_biases=decay_biases,
              reduction=reduction)
    assert_runs_equal(train_reference(X, Y, *net, 30, optimizer="nesterov", **kw),
                      train_reference(X, Y, *net, 30, optimizer="gd", **kw))
    with_momentum = train_reference(X, Y, *net, 30, optimizer="nesterov", **dict(kw, momentum=0.9))
    assert not np.array_equal(with_momentum["W1"], train_reference(X, Y, *net, 30, **dict(kw, momentum=0.9))["W1"])


@settings(max_examples=25)
@given(seed=st.integers(0, 2**16), batch_size=st.integers(0, 6), beta1=st.sampled_from([0.0, 0.5, 0.9]),
       beta2=st.sampled_from([0.9, 0.999]), lr=st.sampled_from([0.01, 0.3]))
def test_adamw_without_decay_is_adam_bitwise(seed, batch_size, beta1, beta2, lr):
    X, Y, net = problem(seed)
    kw = dict(lr=lr, beta1=beta1, beta2=beta2, batch_size=batch_size, weight_decay=0.0, decay_biases=True)
    adam = train_reference(X, Y, *net, 30, optimizer="adam", **kw)
    assert_runs_equal(train_reference(X, Y, *net, 30, optimizer="adamw", **kw), adam)
    decayed = train_reference(X, Y, *net, 30, optimizer="adamw", **dict(kw, weight_decay=0.1))
    assert not np.array_equal(decayed["W1"], adam["W1"])


@settings(max_examples=30)
@given(seed=st.integers(0, 2**16), optimizer=st.sampled_from(OPTIMIZERS), reduction=st.sampled_from(["sum", "mean"]),
       extra=st.integers(0, 3), wd=st.sampled_from([0.0, 0.1]))
def test_one_batch_of_everything_is_full_batch(seed, optimizer, reduction, extra, wd):
    """batch_size N (or more: still one batch) in dataset order is the full batch, to rounding."""
    X, Y, net = problem(seed)
    kw = dict(lr=0.2, momentum=0.8, optimizer=optimizer, reduction=reduction, weight_decay=wd, checkpoints=(5,))
    full = train_reference(X, Y, *net, 25, **kw)
    one = train_reference(X, Y, *net, 25, batch_size=len(Y) + extra, **kw)
    for k in WEIGHTS + ("outputs", "losses", "checkpoint_loss", "grad_norm"):
        np.testing.assert_allclose(one[k], full[k], rtol=1e-12, atol=0, err_msg=k)
    assert one["epochs_run"] == full["epochs_run"] == 25


def _loop(X, Y, net, epochs, batch_size, orders, lr=0.5, momentum=0.6, reduction="sum", divide=False):
    """A direct minibatch loop of heavy-ball GD: batches cut from each epoch's order; `divide` takes the "sum"
    gradient and divides it by the batch's size afterwards (instead of the output delta before)."""
    y = Y.reshape(-1, 1)
    W1, b1, W2, b2 = net
    params = [W1.copy(), np.reshape(b1, (1, -1)).copy(), np.reshape(W2, (-1, 1)).copy(), np.full((1, 1), b2)]
    velocity = [np.zeros_like(p) for p in params]
    losses = [loss_value(forward(X, *params)[3], y, "mse", 1e-8)]
    for e in range(epochs):
        order = orders(e)
        for start in range(0, len(Y), batch_size):
            rows = order[start:start + batch_size]
            _, a1, _, a2 = forward(X[rows], *params)
            grads = gradients(X[rows], y[rows], a1, a2, params[2], "mse", 1e-8, reduction=reduction)
            for p, v, g in zip(params, velocity, grads):
                v[...] = momentum * v + (g / len(rows) if divide else g)
                p -= lr * v
        losses.append(loss_value(forward(X, *params)[3], y, "mse", 1e-8))
    return params, np.array(losses)


def _assert_loop(r, params, losses, exact=True):
    check = np.testing.assert_array_equal if exact else (
        lambda a, b, err_msg: np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=err_msg))
    for k, p in zip(WEIGHTS, params):
        check(np.asarray(r[k]), p.reshape(np.shape(r[k])), err_msg=k)
    check(r["losses"], losses, err_msg="losses")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_online_is_one_sample_at_a_time_in_dataset_order(reduction):
    X, Y, net = problem(2, N=6)
    r = train_reference(X, Y, *net, 12, lr=0.5, momentum=0.6, batch_size=1, reduction=reduction)
    params, losses = _loop(X, Y, net, 12, 1, lambda e: np.arange(6), reduction=reduction)
    _assert_loop(r, params, losses)
    full = train_reference(X, Y, *net, 12, lr=0.5, momentum=0.6, reduction=reduction)
    assert not np.allclose(r["W1"], full["W1"], rtol=1e-3)


def test_minibatch_mean_divides_by_the_batch_size():
    """N = 7 in batches of 3: sizes 3, 3, 1; "mean" divides each batch's gradient by its own size."""
    X, Y, net = problem(3, N=7)
    r = train_reference(X, Y, *net, 10, lr=0.5, momentum=0.6, batch_size=3, reduction="mean")
    params, losses = _loop(X, Y, net, 10, 3, lambda e: np.arange(7), divide=True)
    _assert_loop(r, params, losses, exact=False)
    params, losses = _loop(X, Y, net, 10, 3, lambda e: np.arange(7), reduction="mean")
    _assert_loop(r, params, losses)


def test_shuffled_minibatches_follow_shuffled_order():
    X, Y, net = problem(4, N=7)
    r = train_reference(X, Y, *net, 10, lr=0.5, momentum=0.6, batch_size=2, shuffle=True, shuffle_seed=11)
    params, losses = _loop(X, Y, net, 10, 2, lambda e: shuffled_order(11, e, 7))
    _assert_loop(r, params, losses)
    in_order = train_reference(X, Y, *net, 10, lr=0.5, momentum=0.6, batch_size=2)
    other_seed = train_reference(X, Y, *net, 10, lr=0.5, momentum=0.6, batch_size=2, shuffle=True, shuffle_seed=12)
    assert not np.array_equal(r["W1"], in_order["W1"]) and not np.array_equal(r["W1"], other_seed["W1"])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_minibatch_statistics_are_full_data_at_each_epoch(optimizer):
    """Loss, outputs and grad_norm of state e are those of the whole data set at the weights after e epochs."""
    X, Y, net = problem(5, N=6)
    kw = dict(lr=0.1, optimizer=optimizer, batch_size=4, shuffle=True, shuffle_seed=3, momentum=0.5)
    r = train_reference(X, Y, *net, 8, **kw)
    for e in range(9):
        at_e = train_reference(X, Y, *net, e, **kw)
        assert at_e["final_loss"] == r["losses"][e]
        W1, b1, W2, b2 = (np.asarray(at_e[k]) for k in WEIGHTS)
        params = (W1, b1.reshape(1, -1), W2.reshape(-1, 1), b2.reshape(1, 1))
        _, a1, _, a2 = forward(X, *params)
        assert at_e["final_loss"] == loss_value(a2, Y.reshape(-1, 1), "mse", 1e-8)
        np.testing.assert_array_equal(at_e["outputs"], a2[:, 0])
        grads = gradients(X, Y.reshape(-1, 1), a1, a2, params[2], "mse", 1e-8)
        assert at_e["grad_norm"] == pytest.approx(math.sqrt(sum(np.sum(g ** 2) for g in grads)), rel=1e-14)


# --- weight decay -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("decay_biases", [False, True])
def test_gd_weight_decay_is_the_gradient_of_the_l2_objective(reduction, decay_biases):
    """One gd step with wd descends F + wd/2 ||theta_decayed||^2, F = 1/2 sum (a - y)^2 ("sum") or
    1/2 mean (a - y)^2 ("mean"), whose gradient is the project's: checked by central differences."""
    N, D, H, wd, lr = 5, 3, 4, 0.3, 0.5
    X, Y, (W1, b1, W2, b2) = problem(6, N, D, H)
    theta = np.concatenate([W1.ravel(), b1, W2, [b2]])
    decays = np.concatenate([np.ones(D * H), np.full(H, decay_biases), np.ones(H), [decay_biases]])

    def objective(t):
        a2 = forward(X, t[:D * H].reshape(D, H), t[D * H:D * H + H].reshape(1, H), t[D * H + H:-1].reshape(H, 1),
                     t[-1:].reshape(1, 1))[3][:, 0]
        fit = 0.5 * np.sum((a2 - Y) ** 2) / (N if reduction == "mean" else 1)
        return fit + wd / 2 * np.sum(decays * t ** 2)

    h = 1e-6
    numeric = np.array([(objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    r = train_reference(X, Y, W1, b1, W2, b2, 1, lr=lr, weight_decay=wd, decay_biases=decay_biases,
                        reduction=reduction)
    got = np.concatenate([r["W1"].ravel(), r["b1"], r["W2"], [r["b2"]]])
    np.testing.assert_allclose(got, theta - lr * numeric, rtol=0, atol=1e-8)
    plain = train_reference(X, Y, W1, b1, W2, b2, 1, lr=lr, reduction=reduction)
    # The decay's share of the step: lr wd theta where it applies, nothing (bitwise) where it does not.
    moved = np.concatenate([plain["W1"].ravel(), plain["b1"], plain["W2"], [plain["b2"]]]) - got
    np.testing.assert_allclose(moved[decays == 1], (lr * wd * theta)[decays == 1], rtol=1e-9)
    assert np.all(moved[decays == 0] == 0)


@pytest.mark.parametrize("optimizer", ["gd", "nesterov", "adam", "rmsprop"])
def test_biases_do_not_decay_unless_asked(optimizer):
    """Step 1: the biases' update does not depend on the weights, so without decay_biases they move exactly as
    with no decay at all; with it they move differently."""
    X, Y, net = problem(7)
    kw = dict(lr=0.2, momentum=0.9, optimizer=optimizer)
    plain = train_reference(X, Y, *net, 1, **kw)
    weights_only = train_reference(X, Y, *net, 1, weight_decay=0.5, **kw)
    everything = train_reference(X, Y, *net, 1, weight_decay=0.5, decay_biases=True, **kw)
    for k in ("b1", "b2"):
        np.testing.assert_array_equal(weights_only[k], plain[k])
        assert np.all(everything[k] != plain[k])
    for k in ("W1", "W2"):
        np.testing.assert_array_equal(everything[k], weights_only[k])
        assert np.all(weights_only[k] != plain[k])


def test_adamw_decay_is_decoupled_shrinkage():
    """AdamW's step 1: the adam step (from the undecayed gradient) applied to (1 - lr wd) p, biases excepted
    unless decay_biases."""
    X, Y, net = problem(8)
    lr, wd = 0.05, 0.4
    adam = train_reference(X, Y, *net, 1, lr=lr, optimizer="adam")
    for decay_biases in (False, True):
        adamw = train_reference(X, Y, *net, 1, lr=lr, optimizer="adamw", weight_decay=wd, decay_biases=decay_biases)
        for k, p0 in zip(WEIGHTS, net):
            shrink = 1 - lr * wd if (k[0] == "W" or decay_biases) else 1.0
            step = np.asarray(adam[k]) - np.asarray(p0).reshape(np.shape(adam[k]))
            np.testing.assert_allclose(adamw[k], shrink * np.asarray(p0).reshape(np.shape(adam[k])) + step,
                                       rtol=1e-13, atol=1e-15, err_msg=k)
        if not decay_biases:
            np.testing.assert_array_equal(adamw["b1"], adam["b1"])
            assert adamw["b2"] == adam["b2"]


# --- options, float32 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_float32_trains_in_float32_near_float64(optimizer):
    """Every optimizer's buffers and scalars are in the working precision; the adaptive ones normalise small
    gradients, whose float32 rounding then shows at 1e-4 of a step."""
    X, Y, net = problem(9)
    kw = dict(lr=0.05, momentum=0.5, optimizer=optimizer, weight_decay=0.01, batch_size=2)
    r64 = train_reference(X, Y, *net, 5, **kw)
    net32 = (net[0].astype(np.float32), *net[1:])
    r32 = train_reference(X, Y, *net32, 5, **kw)
    for k in WEIGHTS:
        assert np.asarray(r32[k]).dtype == np.float32
        np.testing.assert_allclose(r32[k], r64[k], rtol=1e-3, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("bad", [dict(optimizer="sgd"), dict(optimizer="Adam"), dict(batch_size=-1)])
def test_unknown_optimizer_and_negative_batch_size_are_errors(bad):
    with pytest.raises(ValueError):
        train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(0), 1, lr=0.1, **bad)


def test_bias_free_networks_take_every_optimizer():
    W1, _, W2, _ = nb.legacy_normal(3)
    for optimizer in OPTIMIZERS:
        r = train_reference(nb.XOR_X, nb.XOR_Y, W1, None, W2, None, 20, lr=0.1, bias=False, optimizer=optimizer,
                            weight_decay=0.01, decay_biases=True, batch_size=3)
        assert r["b1"] is None and r["b2"] is None and np.isfinite(r["final_loss"])
        assert not np.array_equal(r["W1"], W1)


# --- the shuffle rule ------------------------------------------------------------------------------------

M64 = 2**64 - 1


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), epoch=st.integers(0, 2**32 - 1), n=st.integers(0, 300))
def test_shuffled_order_is_a_deterministic_permutation(seed, epoch, n):
    order = shuffled_order(seed, epoch, n)
    assert order.dtype == np.int64 and order.shape == (n,)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    np.testing.assert_array_equal(order, shuffled_order(seed, epoch, n))


def test_shuffled_order_differs_between_epochs_and_seeds():
    by_epoch = {tuple(shuffled_order(5, e, 20)) for e in range(50)}
    by_seed = {tuple(shuffled_order(s, 3, 20)) for s in range(50)}
    assert len(by_epoch) == 50 and len(by_seed) == 50
    assert tuple(shuffled_order(1, 0, 20)) != tuple(shuffled_order(0, 2**32 - 1, 20))  # seed and epoch: separate bits
    # Every position is hit over many epochs (no element is stuck).
    firsts = {int(shuffled_order(0, e, 10)[0]) for e in range(200)}
    assert firsts == set(range(10))


def test_shuffled_order_by_hand():
    """x = (seed << 32) | epoch, then splitmix64; the first output picks the element of the last place."""
    seed, epoch, n = 3, 5, 1000
    x = (3 * 2**32 + 5 + 0x9E3779B97F4A7C15) % 2**64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    first = z ^ (z >> 31)
    assert shuffled_order(seed, epoch, n)[-1] == first % n
    # splitmix64's published outputs from the state 1234567 (seed 0, epoch 1234567), Fisher-Yates over 4 items:
    # i = 3 swaps with j = out1 % 4 = 1: [0, 3, 2, 1]; i = 2 with out2 % 3 = 1: [0, 2, 3, 1]; i = 1 with
    # out3 % 2 = 1: itself.
    outs = (6457827717110365317, 3203168211198807973, 9817491932198370423)
    assert [outs[0] % 4, outs[1] % 3, outs[2] % 2] == [1, 1, 1]
    np.testing.assert_array_equal(shuffled_order(0, 1234567, 4), [0, 2, 3, 1])
    assert list(shuffled_order(7, 0, 0)) == [] and list(shuffled_order(7, 0, 1)) == [0]


# --- against torch.optim ----------------------------------------------------------------------------------

TORCH_CASES = [
    ("gd", dict(momentum=0.0, weight_decay=0.0)),
    ("gd", dict(momentum=0.9, weight_decay=0.05)),
    ("gd", dict(momentum=0.9, weight_decay=0.05, decay_biases=True, batch_size=2, shuffle=True)),
    ("nesterov", dict(momentum=0.9, weight_decay=0.05)),
    ("nesterov", dict(momentum=0.8, batch_size=1, reduction="mean")),
    ("adam", dict(beta1=0.8, beta2=0.99, opt_eps=1e-6, weight_decay=0.05)),
    ("adam", dict(batch_size=3, shuffle=True, reduction="mean", loss="bce", activation="tanh")),
    ("adamw", dict(weight_decay=0.3)),
    ("adamw", dict(weight_decay=0.3, decay_biases=True, batch_size=2)),
    ("rmsprop", dict(beta2=0.9, weight_decay=0.05)),
    ("rmsprop", dict(opt_eps=1e-4, batch_size=3, shuffle=True, reduction="mean")),
]


def torch_optimizer(torch, optimizer, groups, o):
    if optimizer in ("gd", "nesterov"):
        return torch.optim.SGD(groups, lr=1.0, momentum=o["momentum"], dampening=0, nesterov=optimizer == "nesterov")
    betas = (o["beta1"], o["beta2"])
    if optimizer == "adam":
        return torch.optim.Adam(groups, lr=1.0, betas=betas, eps=o["opt_eps"])
    if optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=1.0, betas=betas, eps=o["opt_eps"])
    return torch.optim.RMSprop(groups, lr=1.0, alpha=o["beta2"], eps=o["opt_eps"], momentum=0, centered=False)


@pytest.mark.parametrize("optimizer,options", TORCH_CASES)
def test_against_torch_optim(optimizer, options):
    """20 updates of a 3-4-1 network in float64, torch.optim with the same hyperparameters and a loss whose
    gradient is the project's: 1/2 sum (a - y)^2 for MSE ("sum"), the summed BCE, each divided by the batch's
    size for "mean"."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; it is optional, never a dependency")
    o = dict(momentum=0.0, beta1=0.9, beta2=0.999, opt_eps=1e-8, weight_decay=0.0, decay_biases=False,
             batch_size=0, shuffle=False, reduction="sum", loss="mse", activation="sigmoid") | options
    X, Y, (W1, b1, W2, b2) = problem(10, N=6)
    Y = np.round(Y) if o["loss"] == "bce" else Y
    lr_hidden, lr_output = (0.5, 0.3) if optimizer in ("gd", "nesterov") else (0.05, 0.02)
    seed = 17
    updates_per_epoch = 1 if o["batch_size"] == 0 else math.ceil(6 / o["batch_size"])
    epochs = max(1, 20 // updates_per_epoch)
    r = train_reference(X, Y, W1, b1, W2, b2, epochs, optimizer=optimizer, lr_hidden=lr_hidden, lr_output=lr_output,
                        shuffle_seed=seed, **o)

    t = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
         for k, v in zip(WEIGHTS, (W1, b1, W2, b2))}
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    bias_wd = o["weight_decay"] if o["decay_biases"] else 0.0
    groups = [{"params": [t["W1"]], "lr": lr_hidden, "weight_decay": o["weight_decay"]},
              {"params": [t["b1"]], "lr": lr_hidden, "weight_decay": bias_wd},
              {"params": [t["W2"]], "lr": lr_output, "weight_decay": o["weight_decay"]},
              {"params": [t["b2"]], "lr": lr_output, "weight_decay": bias_wd}]
    opt = torch_optimizer(torch, optimizer, groups, o)
    act = torch.sigmoid if o["activation"] == "sigmoid" else torch.tanh
    for e in range(epochs):
        order = shuffled_order(seed, e, 6) if o["shuffle"] else np.arange(6)
        size = o["batch_size"] or 6
        for start in range(0, 6, size):
            rows = torch.tensor(order[start:start + size])
            a = torch.sigmoid(act(Xt[rows] @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"])
            y = Yt[rows]
            if o["loss"] == "mse":
                objective = 0.5 * torch.sum((a - y) ** 2)
            else:
                objective = -torch.sum(y * torch.log(a + 1e-8) + (1 - y) * torch.log(1 - a + 1e-8))
            if o["reduction"] == "mean":
                objective = objective / len(rows)
            opt.zero_grad()
            objective.backward()
            opt.step()
    for k in WEIGHTS:
        want = t[k].detach().numpy()
        assert not np.allclose(want, np.asarray({"W1": W1, "b1": b1, "W2": W2, "b2": b2}[k]), rtol=1e-3)
        np.testing.assert_allclose(r[k], want, rtol=1e-10, atol=1e-14, err_msg=k)

"""The NumPy reference against the seed notebooks' printed numbers and finite differences."""
import numpy as np
import pytest

from kernels import reference
from kernels.reference import forward, gradients, loss_value, train_reference
from tests import notebooks as nb


def test_notebook_002_losses_weights_predictions():
    r = train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(42), 10000, lr=0.1,
                        checkpoints=nb.NB002_STATES)
    np.testing.assert_array_equal(np.round(r["checkpoint_loss"], 4), nb.NB002_LOSSES)
    np.testing.assert_allclose(r["W1"], nb.NB002_W1, atol=5e-9)
    np.testing.assert_allclose(r["W2"], nb.NB002_W2, atol=5e-9)
    np.testing.assert_allclose(r["b1"], nb.NB002_B1, atol=5e-9)
    np.testing.assert_allclose(r["b2"], nb.NB002_B2, atol=5e-9)
    np.testing.assert_allclose(r["outputs"], nb.NB002_PREDICTIONS, atol=5e-9)
    assert r["accuracy"] == 1.0


def test_notebook_001_one_step_then_losses():
    one = train_reference(nb.NB001_X, nb.NB001_Y, *nb.legacy_uniform_001(), 1, lr=0.1)
    np.testing.assert_allclose(one["W1"].T, nb.NB001_W1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one["b1"], nb.NB001_B1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one["W2"], nb.NB001_W2_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one["b2"], nb.NB001_B2_AFTER_ONE, atol=5e-9)
    r = train_reference(nb.NB001_X, nb.NB001_Y, *nb.legacy_uniform_001(), int(nb.NB001_STATES[-1]),
                        lr=0.1, checkpoints=nb.NB001_STATES)
    np.testing.assert_allclose(r["checkpoint_loss"], nb.NB001_LOSSES, rtol=1e-9)


def test_notebook_000_saturated_and_fixed():
    sat = train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(0, 10.0), 5000, lr=0.1,
                          checkpoints=nb.NB000_SATURATED_STATES)
    np.testing.assert_array_equal(np.round(sat["checkpoint_loss"], 6), nb.NB000_SATURATED_LOSSES)
    assert sat["sat_hidden_start"] > 0.5  # the story of the notebook: saturated from the start
    fixed = train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(0, 0.1), 10000, lr=0.1, loss="bce",
                            bce_eps=1e-8, checkpoints=nb.NB000_FIXED_STATES)
    np.testing.assert_array_equal(np.round(fixed["checkpoint_loss"], 6), nb.NB000_FIXED_LOSSES)
    np.testing.assert_array_equal(fixed["outputs"].round(), nb.NB000_FIXED_PREDICTIONS)


def _flat(W1, b1, W2, b2):
    return np.concatenate([W1.ravel(), b1.ravel(), W2.ravel(), np.ravel(b2)])


def _unflat(theta, D, H):
    W1 = theta[:D * H].reshape(D, H)
    b1 = theta[D * H:D * H + H].reshape(1, H)
    W2 = theta[D * H + H:D * H + 2 * H].reshape(H, 1)
    b2 = theta[-1:].reshape(1, 1)
    return W1, b1, W2, b2


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_central_differences(loss, seed):
    """Backprop sums over samples with no 1/N, and MSE's delta has no factor 2:
    the gradient is N/2 d(loss)/d(theta) for MSE and N d(loss)/d(theta) for BCE."""
    rng = np.random.default_rng(seed)
    N, D, H = 5, 3, 4
    X = rng.uniform(-1, 1, (N, D))
    y = rng.uniform(0, 1, (N, 1))
    theta = rng.normal(0, 1.0, D * H + 2 * H + 1)
    eps = 1e-8 if loss == "bce" else 0.0

    def L(t):
        W1, b1, W2, b2 = _unflat(t, D, H)
        return loss_value(forward(X, W1, b1, W2, b2)[3], y, loss, eps)

    W1, b1, W2, b2 = _unflat(theta, D, H)
    _, a1, _, a2 = forward(X, W1, b1, W2, b2)
    grad = _flat(*gradients(X, y, a1, a2, W2, loss, eps))
    h = 1e-6
    numeric = np.array([(L(theta + h * e) - L(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    scale = N / 2 if loss == "mse" else N
    np.testing.assert_allclose(grad / scale, numeric, rtol=1e-6, atol=1e-9)


def test_bce_delta_is_a_minus_y_without_eps():
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (6, 2))
    y = rng.integers(0, 2, (6, 1)).astype(float)
    W1, b1, W2, b2 = rng.normal(size=(2, 3)), rng.normal(size=(1, 3)), rng.normal(size=(3, 1)), np.zeros((1, 1))
    _, a1, _, a2 = forward(X, W1, b1, W2, b2)
    *_, db2 = gradients(X, y, a1, a2, W2, "bce", 0.0)
    np.testing.assert_allclose(db2[0, 0], np.sum(a2 - y), rtol=1e-12)


def test_momentum_zero_is_plain_gradient_descent_bitwise():
    args = (nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(7), 300)
    plain = train_reference(*args, lr=0.5)
    heavy = train_reference(*args, lr=0.5, momentum=0.9)
    zero = train_reference(*args, lr=0.5, momentum=0.0)
    np.testing.assert_array_equal(plain["W1"], zero["W1"])
    assert not np.array_equal(plain["W1"], heavy["W1"])


def test_early_stop_and_divergence_rules():
    args = (nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(42), 10000)
    full = train_reference(*args, lr=0.1)
    stopped = train_reference(*args, lr=0.1, early_stop=True)
    assert stopped["epochs_run"] == stopped["epoch_converged"] == full["epoch_converged"] > 0
    assert stopped["converged"] and full["converged"]
    # Saturated outputs with BCE and eps = 0: log(0) makes the loss non-finite.
    with np.errstate(all="ignore"):
        blown = train_reference(*args[:-1], 5, lr=0.1, loss="bce", bce_eps=0.0)
        blown_large = train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(1, 1000.0), 5, lr=0.1,
                                      loss="bce", bce_eps=0.0)
    assert not blown["diverged"] and blown["epochs_run"] == 5
    assert blown_large["diverged"] and not blown_large["converged"] and blown_large["epochs_run"] == 0


# --- the model family ----------------------------------------------------------------------

FAMILY = [(activation, output, loss)
          for activation in ("sigmoid", "tanh", "relu", "identity")
          for output, loss in (("sigmoid", "mse"), ("sigmoid", "bce"), ("identity", "mse"))]


def _family_problem(seed, activation, scaling, bias, N=5, D=3, H=4):
    """Random float64 data with targets in (0, 1); for ReLU, resampled until no |z1| is within 1e-3
    of the kink (central differences move z1 by a few 1e-6 at most)."""
    rng = np.random.default_rng(seed)
    while True:
        X = rng.uniform(-1, 1, (N, D))
        y = rng.uniform(0.05, 0.95, (N, 1))
        W1, W2 = rng.normal(0, 1.0, (D, H)), rng.normal(0, 1.0, (H, 1))
        b1, b2 = (rng.normal(0, 0.5, (1, H)), rng.normal(0, 0.5, (1, 1))) if bias else (None, None)
        z1 = forward(X, W1, b1, W2, b2, activation=activation, scaling=scaling)[0]
        if activation != "relu" or (np.min(np.abs(z1)) > 1e-3 and np.any(z1 > 0)):
            return X, y, (W1, b1, W2, b2)


def _flat_params(params):
    return np.concatenate([np.ravel(p) for p in params if p is not None])


def _unflat_params(theta, D, H, bias):
    W1, theta = theta[:D * H].reshape(D, H), theta[D * H:]
    b1 = None
    if bias:
        b1, theta = theta[:H].reshape(1, H), theta[H:]
    W2, theta = theta[:H].reshape(H, 1), theta[H:]
    b2 = theta.reshape(1, 1) if bias else None
    return W1, b1, W2, b2


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("scaling", ["standard", "ntk", "mean-field"])
@pytest.mark.parametrize("activation,output,loss", FAMILY)
def test_family_gradients_match_central_differences(activation, output, loss, scaling, bias):
    """Every member of the family (both reductions checked against the same differences): the
    reference's gradient is c * d(reported loss)/d(theta).

    The reported loss is L = (1/N) sum_n l_n, and the reference's output delta is
    MSE, sigmoid output: (a - y) a(1 - a), while dl_n/dz2 = 2 (a - y) a(1 - a);
    MSE, identity output: (a - y),         while dl_n/dz2 = 2 (a - y);
    BCE (sigmoid output): exactly dl_n/dz2 (the eps is inside the logs of both);
    summed over samples without the 1/N. So c = N/2 for MSE (either output) and N for BCE with
    reduction "sum", and "mean" divides by N: c = 1/2 and 1. Backpropagation from z2 is exact
    (scalings included), so the same c holds for every parameter."""
    seed = 10 * FAMILY.index((activation, output, loss)) + 2 * ("standard", "ntk", "mean-field").index(scaling) + bias
    N, D, H = 5, 3, 4
    X, y, params = _family_problem(seed, activation, scaling, bias, N, D, H)
    family = dict(activation=activation, output=output, scaling=scaling)
    eps = 1e-8 if loss == "bce" else 0.0

    def L(t):
        return loss_value(forward(X, *_unflat_params(t, D, H, bias), **family)[3], y, loss, eps)

    theta = _flat_params(params)
    h = 1e-6
    numeric = np.array([(L(theta + h * e) - L(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    W1, b1, W2, b2 = params
    _, a1, _, a2 = forward(X, W1, b1, W2, b2, **family)
    for reduction, c in (("sum", {"mse": N / 2, "bce": N}[loss]), ("mean", {"mse": 1 / 2, "bce": 1}[loss])):
        grads = gradients(X, y, a1, a2, W2, loss, eps, **family, reduction=reduction, bias=bias)
        assert (grads[1] is None and grads[3] is None) == (not bias)
        grad = _flat_params(grads)
        assert grad.shape == theta.shape
        np.testing.assert_allclose(grad / c, numeric, rtol=1e-6, atol=1e-9, err_msg=reduction)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("output", ["sigmoid", "identity"])
@pytest.mark.parametrize("scaling,s1,s2", [("ntk", 1 / 2, 1 / 4), ("mean-field", 1 / 2, 1 / 16)])
def test_scaling_is_standard_with_scaled_weights(activation, output, scaling, s1, s2):
    """z1 = s1 (X @ W1) + b1 and z2 = s2 (a1 @ W2) + b2 with s1 = 1/sqrt(D) and s2 = 1/sqrt(H) (ntk)
    or 1/H (mean-field). D = 4 and H = 16 make the factors powers of two, so the products are exact
    and equal to the standard network with weights s1 W1, s2 W2 to the bit."""
    rng = np.random.default_rng(5)
    N, D, H = 6, 4, 16
    X = rng.uniform(-1, 1, (N, D))
    W1, b1, W2, b2 = rng.normal(size=(D, H)), rng.normal(size=(1, H)), rng.normal(size=(H, 1)), rng.normal(size=(1, 1))
    family = dict(activation=activation, output=output)
    got = forward(X, W1, b1, W2, b2, **family, scaling=scaling)
    want = forward(X, s1 * W1, b1, s2 * W2, b2, **family, scaling="standard")
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    standard = forward(X, W1, b1, W2, b2, **family)
    assert not np.allclose(got[0], standard[0]) and not np.allclose(got[2], standard[2])


def test_scaling_in_gradients_and_training_float32():
    """The scaled network trains in the working precision and its gradients carry s1, s2."""
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, (5, 3))
    Y = rng.integers(0, 2, 5).astype(float)
    W1, W2 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4)
    for scaling in ("standard", "ntk", "mean-field"):
        r = train_reference(X, Y, W1, np.zeros(4), W2, 0.0, 20, lr=0.5, scaling=scaling, activation="tanh")
        assert r["W1"].dtype == np.float32 and r["W2"].dtype == np.float32 and r["outputs"].dtype == np.float32
        assert np.isfinite(r["final_loss"])


def _gd_without_biases(X, Y, W1, W2, epochs, lr, **family):
    """The brief's definition: bias=True training with zero biases whose gradient is discarded."""
    y = Y.reshape(-1, 1)
    W1, W2 = W1.copy(), W2.reshape(-1, 1).copy()
    b1, b2 = np.zeros((1, W1.shape[1])), np.zeros((1, 1))
    for _ in range(epochs):
        _, a1, _, a2 = forward(X, W1, b1, W2, b2, **family)
        dW1, _, dW2, _ = gradients(X, y, a1, a2, W2, "mse", 0.0, **family)
        W1 -= lr * dW1
        W2 -= lr * dW2
    return W1, W2


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_no_bias_is_biases_held_at_zero(activation):
    W1, _, W2, _ = nb.legacy_normal(3)
    family = dict(activation=activation, scaling="ntk")
    r = train_reference(nb.XOR_X, nb.XOR_Y, W1, None, W2, None, 50, lr=0.5, bias=False, **family)
    assert r["b1"] is None and r["b2"] is None
    ignored = train_reference(nb.XOR_X, nb.XOR_Y, W1, np.ones(4), W2, 7.0, 50, lr=0.5, bias=False, **family)
    np.testing.assert_array_equal(ignored["W1"], r["W1"])
    W1_manual, W2_manual = _gd_without_biases(nb.XOR_X, nb.XOR_Y, W1, W2, 50, 0.5, **family)
    np.testing.assert_array_equal(r["W1"], W1_manual)
    np.testing.assert_array_equal(r["W2"], W2_manual[:, 0])
    with_bias = train_reference(nb.XOR_X, nb.XOR_Y, W1, np.zeros(4), W2, 0.0, 50, lr=0.5, **family)
    assert not np.array_equal(with_bias["W1"], r["W1"])


def test_no_bias_grad_norm_excludes_biases():
    X, Y = nb.XOR_X, nb.XOR_Y
    W1, b1, W2, b2 = nb.legacy_normal(4)
    without = train_reference(X, Y, W1, None, W2, None, 0, lr=0.1, bias=False)
    zero_biases = train_reference(X, Y, W1, b1, W2, b2, 0, lr=0.1)
    _, a1, _, a2 = forward(X, W1, b1.reshape(1, -1), W2.reshape(-1, 1), np.zeros((1, 1)))
    dW1, db1, dW2, db2 = gradients(X, Y.reshape(-1, 1), a1, a2, W2.reshape(-1, 1), "mse", 0.0)
    assert without["grad_norm"] == pytest.approx(np.sqrt(np.sum(dW1 ** 2) + np.sum(dW2 ** 2)), rel=1e-14)
    assert zero_biases["grad_norm"] == pytest.approx(
        np.sqrt(without["grad_norm"] ** 2 + np.sum(db1 ** 2) + np.sum(db2 ** 2)), rel=1e-14)
    assert zero_biases["grad_norm"] > without["grad_norm"]


def test_layer_learning_rates_one_step():
    X, Y = nb.XOR_X, nb.XOR_Y
    W1, b1, W2, b2 = nb.legacy_normal(5)
    b1, b2 = np.full(4, 0.3), -0.2
    r = train_reference(X, Y, W1, b1, W2, b2, 1, lr_hidden=0.7, lr_output=0.05)
    _, a1, _, a2 = forward(X, W1, b1.reshape(1, -1), W2.reshape(-1, 1), np.full((1, 1), b2))
    dW1, db1, dW2, db2 = gradients(X, Y.reshape(-1, 1), a1, a2, W2.reshape(-1, 1), "mse", 1e-8)
    np.testing.assert_array_equal(r["W1"], W1 - 0.7 * dW1)
    np.testing.assert_array_equal(r["b1"], b1 - 0.7 * db1[0])
    np.testing.assert_array_equal(r["W2"], W2 - 0.05 * dW2[:, 0])
    assert r["b2"] == b2 - 0.05 * db2[0, 0]
    # One rate given, the other from lr.
    partial = train_reference(X, Y, W1, b1, W2, b2, 1, lr=0.05, lr_hidden=0.7)
    np.testing.assert_array_equal(partial["W1"], r["W1"])
    np.testing.assert_array_equal(partial["W2"], r["W2"])
    with pytest.raises(ValueError):
        train_reference(X, Y, W1, b1, W2, b2, 1, lr_hidden=0.7)
    with pytest.raises(ValueError):
        train_reference(X, Y, W1, b1, W2, b2, 1)


def test_equal_layer_rates_are_lr_bitwise():
    args = (nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(7), 300)
    plain = train_reference(*args, lr=0.5, momentum=0.9)
    split = train_reference(*args, lr_hidden=0.5, lr_output=0.5, momentum=0.9)
    for k in ("W1", "b1", "W2", "b2", "outputs", "checkpoint_loss"):
        np.testing.assert_array_equal(plain[k], split[k])
    assert plain["grad_norm"] == split["grad_norm"] and plain["final_loss"] == split["final_loss"]


def test_mean_reduction_divides_the_gradient_by_n():
    """N = 4 samples: dividing by 4 is exact, so mean with lr 4c trains exactly like sum with lr c."""
    args = (nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(8), 200)
    total = train_reference(*args, lr=0.25, momentum=0.5, loss="bce", activation="tanh")
    mean = train_reference(*args, lr=1.0, momentum=0.5, loss="bce", activation="tanh", reduction="mean")
    for k in ("W1", "b1", "W2", "b2", "outputs"):
        np.testing.assert_array_equal(total[k], mean[k])
    assert mean["final_loss"] == total["final_loss"]  # the reported loss does not change
    assert mean["grad_norm"] == total["grad_norm"] / 4


def test_accuracy_nan_for_non_binary_targets():
    args = (*nb.legacy_normal(42), 100)
    binary = train_reference(nb.XOR_X, nb.XOR_Y, *args, lr=0.5)
    soft = train_reference(nb.XOR_X, np.array([0.0, 1.0, 0.9, 0.0]), *args, lr=0.5)
    assert 0.0 <= binary["accuracy"] <= 1.0
    assert np.isnan(soft["accuracy"])


def test_dead_relu_unit():
    """Nonnegative inputs, a negative W1 column and bias: unit 0 is dead on every sample, and stays
    dead (no gradient reaches it); the other units are alive."""
    W1 = np.array([[-1.0, 0.5, 0.8, 1.2], [-2.0, 0.7, 0.3, 0.9]])
    b1 = np.array([-0.1, 0.2, 0.1, 0.3])
    W2, b2 = np.array([0.5, -0.4, 0.3, 0.2]), 0.0
    r = train_reference(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 20, lr=0.1, activation="relu")
    assert r["dead_hidden_start"] == 0.25
    assert r["dead_hidden_end"] >= 0.25
    np.testing.assert_array_equal(r["W1"][:, 0], W1[:, 0])
    assert r["b1"][0] == b1[0]
    assert np.isnan(r["sat_hidden_start"]) and np.isnan(r["sat_hidden_end"])
    for activation in ("sigmoid", "tanh", "identity"):
        other = train_reference(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 2, lr=0.1, activation=activation)
        assert np.isnan(other["dead_hidden_start"]) and np.isnan(other["dead_hidden_end"])


def test_saturation_thresholds_by_activation():
    """One sample, z1 = W1 row: |z| > 2 counts for tanh, |z| > 4 for sigmoid, nothing for identity."""
    X, Y = np.array([[1.0]]), np.array([1.0])
    W1, b1 = np.array([[1.5, 2.5, -3.0, 4.5]]), np.zeros(4)
    W2 = np.array([2.0, 2.0, 2.0, 2.0])  # tanh: z2 = 2 (tanh 1.5 + tanh 2.5 - tanh 3 + tanh 4.5) < 4
    share = {"tanh": 0.75, "sigmoid": 0.25, "identity": 0.0}
    for activation, want in share.items():
        r = train_reference(X, Y, W1, b1, W2, 0.0, 0, lr=0.1, activation=activation, output="identity")
        assert r["sat_hidden_start"] == r["sat_hidden_end"] == want
        assert r["sat_output_start"] == 0.0  # identity outputs never saturate
    r = train_reference(X, Y, W1, b1, W2, 0.0, 0, lr=0.1, activation="identity")  # z2 = 11 > 4
    assert r["sat_output_start"] == 1.0
    r = train_reference(X, Y, W1, b1, W2, 0.0, 0, lr=0.1, activation="tanh")  # z2 about 3.9
    assert r["sat_output_start"] == 0.0


def test_identity_output_with_bce_is_an_error():
    with pytest.raises(ValueError):
        train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(0), 1, lr=0.1, loss="bce", output="identity")
    X, y = nb.XOR_X, nb.XOR_Y.reshape(-1, 1)
    W1, b1, W2, b2 = nb.legacy_normal(0)
    _, a1, _, a2 = forward(X, W1, b1, W2.reshape(-1, 1), b2, output="identity")
    with pytest.raises(ValueError):
        gradients(X, y, a1, a2, W2.reshape(-1, 1), "bce", 1e-8, output="identity")


@pytest.mark.parametrize("bad", [dict(activation="softplus"), dict(output="tanh"), dict(scaling="xavier"),
                                 dict(reduction="max"), dict(loss="hinge")])
def test_unknown_names_are_errors(bad):
    with pytest.raises(ValueError):
        train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(0), 1, lr=0.1, **bad)


def test_identity_output_mse_learns_xor_with_tanh():
    r = train_reference(nb.XOR_X, nb.XOR_Y, *nb.legacy_normal(42), 300, lr=0.1, activation="tanh",
                        output="identity")
    assert r["converged"] and r["accuracy"] == 1.0 and r["sat_output_end"] == 0.0


# --- the trainability score ---------------------------------------------------------------------

def test_trainability_score_of_a_trained_run_by_hand():
    """Losses 2, 1, 0.5 over 2 epochs: ratios 1, 1/2, 1/4; fewer than 20 states, so the tail is all of them."""
    s = reference.trainability_scores([2.0, 1.0, 0.5], epochs=2)
    assert s == {"loss_ratio_sum": 1.75, "loss_ratio_tail": 1.75 / 3, "trainability": -1.75, "epoch_diverged": -1}


def test_trainability_score_of_a_diverged_run_by_hand():
    """A loss that overflows at state 2 of 4: the cap there and at the states not reached."""
    s = reference.trainability_scores([1.0, 10.0, np.inf], epochs=4)
    assert s["loss_ratio_sum"] == 1 + 10 + 3e6
    assert s["loss_ratio_tail"] == (1 + 10 + 3e6) / 5
    assert s["trainability"] == pytest.approx(1 + 0.1 + 3e-6, rel=1e-15)  # added in order: last bits differ
    assert s["epoch_diverged"] == 2


def test_trainability_score_caps_finite_ratios_and_keeps_the_tail_window():
    """A finite loss above 1e6 times the initial counts as diverged there; the tail is the last 20 of 31
    states; an early stop holds the last ratio."""
    losses = [1.0] * 5 + [2e6] + [0.5] * 20  # states 0..25, then stopped: states 26..30 hold 0.5
    s = reference.trainability_scores(losses, epochs=30)
    assert s["epoch_diverged"] == 5
    assert s["loss_ratio_sum"] == 5 + 1e6 + 25 * 0.5
    assert s["loss_ratio_tail"] == 0.5  # states 11..30
    assert s["trainability"] == -(5 + 1e6 + 12.5)


def test_trainability_score_of_the_reference_run_is_that_of_its_losses():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([0, 1, 1, 0], float)
    W1, b1, W2, b2 = nb.legacy_normal(3)
    r = train_reference(X, Y, W1, b1, W2, b2, 300, lr=0.5)
    assert r["losses"].shape == (301,) and r["losses"][-1] == r["final_loss"]
    ratios = r["losses"] / r["losses"][0]
    assert r["loss_ratio_sum"] == pytest.approx(ratios.sum(), rel=1e-14)
    assert r["loss_ratio_tail"] == pytest.approx(ratios[-20:].mean(), rel=1e-14)
    want = -ratios.sum() if ratios[-20:].mean() < 1 else (1 / ratios).sum()
    assert r["trainability"] == pytest.approx(want, rel=1e-14)

"""The NumPy reference against the seed notebooks' printed numbers and finite differences."""
import numpy as np
import pytest

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

"""The curvature reference (kernels/curvature.py): its objective is the one whose gradient the reference
follows, its Hessian that of second differences of the objective's values and of a hand computation, its
output Jacobian that of finite differences, its NTK the operator of the outputs' first-order dynamics, and
the edge-of-stability thresholds those of the updates on a quadratic."""
import itertools

import numpy as np
import pytest

from kernels import curvature as cv
from kernels import reference as ref

VARIANTS = [dict(activation=a, output=o, loss=l, scaling=s, bias=b, reduction=r)
            for a, o, l, s, b, r in itertools.product(["sigmoid", "tanh", "identity"], ["sigmoid", "identity"],
                                                      ["mse", "bce"], ["standard", "ntk"], [True, False],
                                                      ["sum", "mean"])
            if not (l == "bce" and o == "identity")]


def setup(variant, seed=0, N=5, D=3, H=4, l2=0.0, decay_biases=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (N, D))
    Y = rng.uniform(0.1, 0.9, N)
    objective = cv.Objective(X, Y, D, H, l2=l2, decay_biases=decay_biases, **variant)
    n = D * H + 2 * H + 1 if variant["bias"] else D * H + H
    return objective, rng.normal(0, 0.8, n)


@pytest.mark.parametrize("variant", VARIANTS[::3], ids=lambda v: "-".join(str(x) for x in v.values()))
@pytest.mark.parametrize("l2, decay_biases", [(0.0, False), (0.3, False), (0.3, True)])
def test_the_objectives_gradient_is_the_one_the_reference_follows(variant, l2, decay_biases):
    """Central differences of J's values equal the reference's analytic gradient (plus wd theta)."""
    objective, theta = setup(variant, l2=l2, decay_biases=decay_biases)
    numeric = np.array([(objective.value(theta + h) - objective.value(theta - h)) / 2e-6
                        for h in np.eye(theta.size) * 1e-6])
    np.testing.assert_allclose(objective.gradient(theta), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("variant", VARIANTS[::2], ids=lambda v: "-".join(str(x) for x in v.values()))
def test_hessian_is_the_second_differences_of_the_objective(variant):
    """The Hessian (differences of the analytic gradient) against second differences of J's values alone."""
    objective, theta = setup(variant, l2=0.1)
    H = objective.hessian(theta)
    h = 1e-4
    E = np.eye(theta.size) * h
    second = np.array([[(objective.value(theta + E[i] + E[j]) - objective.value(theta + E[i] - E[j])
                         - objective.value(theta - E[i] + E[j]) + objective.value(theta - E[i] - E[j])) / (4 * h * h)
                        for j in range(theta.size)] for i in range(theta.size)])
    scale = np.max(np.abs(H))
    np.testing.assert_allclose(H, second, atol=1e-5 * scale)
    assert cv.sharpness(objective, theta) == pytest.approx(np.linalg.eigvalsh(second)[-1], rel=1e-5, abs=1e-7)


def test_hessian_of_a_1_1_1_linear_network_by_hand():
    """f = w2 (w1 x + b1) + b2, J = 1/2 sum (f - y)^2: the Hessian by hand at one point."""
    X, Y = np.array([[0.5], [-1.0], [2.0]]), np.array([1.0, 0.0, 0.5])
    w1, b1, w2, b2 = 0.3, -0.2, 0.8, 0.1
    objective = cv.Objective(X, Y, 1, 1, activation="identity", output="identity")
    x, y = X[:, 0], Y
    u = w1 * x + b1
    e = w2 * u + b2 - y  # residuals
    # theta = (w1, b1, w2, b2); df/dtheta = (w2 x, w2, u, 1); d2f: d/dw2 of (w2 x, w2) = (x, 1), the rest 0
    J = np.stack([w2 * x, np.full(3, w2), u, np.ones(3)], axis=1)
    H = J.T @ J
    H[0, 2] += np.sum(e * x)
    H[2, 0] += np.sum(e * x)
    H[1, 2] += np.sum(e)
    H[2, 1] += np.sum(e)
    np.testing.assert_allclose(objective.hessian(np.array([w1, b1, w2, b2])), H, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS[::2], ids=lambda v: "-".join(str(x) for x in v.values()))
def test_output_jacobian_is_that_of_finite_differences(variant):
    objective, theta = setup(variant, seed=3)
    numeric = np.stack([(objective.outputs(theta + h)[3] - objective.outputs(theta - h)[3])[:, 0] / 2e-6
                        for h in np.eye(theta.size) * 1e-6], axis=1)
    np.testing.assert_allclose(objective.output_jacobian(theta), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("rates", [(0.01, 0.01), (0.002, 0.02)])
def test_the_ntk_moves_the_outputs_of_one_small_step(reduction, rates):
    """One step of the reference's gradient descent (MSE) changes the outputs by -K (a - y) to first order,
    K = r Jo diag(lr) Jo^T: the kernel whose largest eigenvalue times lr is the lazy/catapult boundary."""
    variant = dict(activation="tanh", output="identity", loss="mse", scaling="standard", bias=True,
                   reduction=reduction)
    objective, theta = setup(variant, seed=5)
    D, H = 3, 4
    W1, b1, W2, b2 = cv.unflatten(theta, D, H)
    before = objective.outputs(theta)[3][:, 0]
    step = ref.train_reference(objective.X, objective.y[:, 0], W1, b1[0], W2[:, 0], b2[0, 0], 1,
                               lr_hidden=rates[0], lr_output=rates[1], activation="tanh", output="identity",
                               reduction=reduction)
    after = objective.outputs(cv.parameters(step["W1"], step["b1"], step["W2"], step["b2"]))[3][:, 0]
    K = cv.ntk(objective, theta, cv.layer_rates(D, H, True, *rates))
    predicted = -K @ (before - objective.y[:, 0])
    np.testing.assert_allclose(after - before, predicted, rtol=0.05, atol=1e-3 * np.max(np.abs(predicted)))
    if rates[0] == rates[1]:
        assert cv.largest_eigenvalue(K) == pytest.approx(rates[0] * cv.largest_eigenvalue(cv.ntk(objective, theta)))


@pytest.mark.parametrize("optimizer, momentum", [("gd", 0.0), ("gd", 0.5), ("gd", 0.9), ("nesterov", 0.5),
                                                 ("nesterov", 0.9)])
def test_edge_thresholds_separate_stable_and_unstable_updates_on_a_quadratic(optimizer, momentum):
    """The reference's update on J = lambda p^2 / 2 (gradient lambda p) at lr * lambda 1% below and above
    `edge_threshold`: the parameter shrinks below it and grows above it."""
    edge = cv.edge_threshold(optimizer, momentum)
    for factor, shrinks in ((0.99, True), (1.01, False)):
        p = np.array([1.0])
        opt = ref.Optimizer(optimizer, [p], [factor * edge], [True], np.dtype(np.float64), momentum=momentum)
        for _ in range(3000):
            opt.step([p.copy()])  # lambda = 1: the gradient is p
        assert (abs(p[0]) < 1e-3) == shrinks, (factor, p[0])
    assert cv.edge_threshold("adam", 0.0) is None and cv.edge_threshold("rmsprop", 0.0) is None


def test_edge_sharpness_is_lr_times_sharpness_with_one_rate_and_the_weighted_eigenvalue_otherwise():
    objective, theta = setup(VARIANTS[0], seed=2)
    one = cv.layer_rates(3, 4, True, 0.3, 0.3)
    assert cv.edge_sharpness(objective, theta, one) == pytest.approx(0.3 * cv.sharpness(objective, theta), rel=1e-9)
    two = cv.layer_rates(3, 4, True, 0.1, 0.5)
    H = objective.hessian(theta)
    want = np.max(np.real(np.linalg.eigvals(np.diag(two) @ H)))  # P H has the eigenvalues of P^1/2 H P^1/2
    assert cv.edge_sharpness(objective, theta, two) == pytest.approx(want, rel=1e-9)


def test_dynamics_of_a_loss_curve():
    assert cv.dynamics([1.0, 0.5, 0.1], True) == {"loss_peak_ratio": 1.0, "catapult": False}
    assert cv.dynamics([1.0, 3.0, 0.01], True) == {"loss_peak_ratio": 3.0, "catapult": True}
    assert cv.dynamics([1.0, 3.0, 2.0], False) == {"loss_peak_ratio": 3.0, "catapult": False}
    assert cv.dynamics([1.0, np.inf], False)["loss_peak_ratio"] == np.inf
    assert np.isnan(cv.sharpness(setup(VARIANTS[0])[0], np.full(25, np.nan)))


def test_the_reference_run_records_its_curvature_state_by_state():
    """train_reference(diagnostics=True): the sharpness of every state is that of its own parameters (the
    final state's are the run's final weights), the extremes and checkpoints are read from them, steps above
    the edge count the updating states past 2 / lr, and lambda_0 is the NTK's at the initial weights."""
    rng = np.random.default_rng(4)
    X, Y = rng.uniform(-1, 1, (6, 2)), rng.uniform(-1, 1, 6)
    W1, b1, W2, b2 = rng.normal(0, 1, (2, 3)), rng.normal(0, 1, 3), rng.normal(0, 1, 3), 0.2
    kw = dict(activation="tanh", output="identity", reduction="mean", lr=1.5, checkpoints=[0, 5, 30, 99])
    r = ref.train_reference(X, Y, W1, b1, W2, b2, 30, diagnostics=True, **kw)
    objective = cv.Objective(X, Y, 2, 3, activation="tanh", output="identity", reduction="mean")
    final = cv.parameters(r["W1"], r["b1"], r["W2"], r["b2"])
    assert r["sharpness_final"] == cv.sharpness(objective, final) == r["sharpness"][-1]
    assert r["sharpness_init"] == cv.sharpness(objective, cv.parameters(W1, b1, W2, b2))
    assert r["sharpness_max"] == r["sharpness"].max() == r["sharpness"][r["epoch_sharpness_max"]]
    np.testing.assert_array_equal(r["checkpoint_sharpness"][:3], r["sharpness"][[0, 5, 30]])
    assert np.isnan(r["checkpoint_sharpness"][3])
    assert r["steps_above_edge"] == int(np.sum(1.5 * r["sharpness"][:-1] > 2))
    assert r["ntk_lambda0"] == cv.largest_eigenvalue(cv.ntk(objective, cv.parameters(W1, b1, W2, b2)))
    assert r["lr_lambda0"] == pytest.approx(1.5 * r["ntk_lambda0"], rel=1e-12)
    assert r["loss_peak_ratio"] == max(r["losses"]) / r["losses"][0]
    plain = ref.train_reference(X, Y, W1, b1, W2, b2, 30, **kw)
    np.testing.assert_array_equal(plain["W1"], r["W1"])  # the diagnostics change nothing of the run
    adam = ref.train_reference(X, Y, W1, b1, W2, b2, 5, diagnostics=True, optimizer="adam", **kw)
    assert adam["steps_above_edge"] is None and np.isfinite(adam["sharpness_max"])

"""The compiled curvature (kernels/hessian.py) against its plain NumPy ground truth (kernels/curvature.py):
Hessian-vector products against the central differences of the analytic gradient, the sharpness on the dense
and the Lanczos paths against LAPACK's eigenvalues of the reference Hessian, the weighted sharpness of
per-layer rates, the NTK's largest eigenvalue on both of its branches, non-finite parameters, the edge of
stability's thresholds against the updates they bound, and the determinism of the Lanczos iteration."""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kernels import curvature as cv
from kernels import hessian as hs
from kernels import optimizers
from kernels import reference as ref
from kernels.vocab import ACTIVATIONS, OPTIMIZERS, REDUCTIONS, SCALINGS

# hidden activation, output, loss: BCE only with a sigmoid output
FAMILIES = [(a, o, l) for a in ACTIVATIONS for o, l in (("sigmoid", "mse"), ("sigmoid", "bce"), ("identity", "mse"))]
# (l2, decay_biases): no weight decay in the gradient, decay of the weights only, of the biases too
DECAYS = [(0.0, False), (0.3, False), (0.3, True)]
KINK = 1e-3  # ReLU networks keep every pre-activation this far from 0 (central differences must not straddle it)


class Model:
    """One network, its data and its objective, with the compiled curvature's caches filled by `forward`."""

    def __init__(self, D, H, N, activation="sigmoid", output="sigmoid", loss="mse", scaling="standard",
                 reduction="sum", bias=True, l2=0.0, decay_biases=False, seed=0, scale=0.8, binary=False,
                 theta=None):
        rng = np.random.default_rng(seed)
        self.X = rng.uniform(-1, 1, (N, D))
        if output == "identity":
            self.Y = rng.normal(0, 1, N)
        else:
            self.Y = rng.integers(0, 2, N).astype(np.float64) if binary else rng.uniform(0.05, 0.95, N)
        self.P = D * H + (2 * H + 1 if bias else H)
        self.shape, self.bias, self.l2, self.decay_biases = (D, H), bool(bias), float(l2), bool(decay_biases)
        self.activation, self.output, self.loss = activation, output, loss
        self.objective = cv.Objective(self.X, self.Y, D, H, loss=loss, activation=activation, output=output,
                                      scaling=scaling, reduction=reduction, bias=bias, l2=l2,
                                      decay_biases=decay_biases)
        s1, s2 = ref.layer_scales(scaling, D, H, np.dtype(np.float64))
        self.Xs, self.s2, self.r = self.X * s1, float(s2), float(self.objective.r)
        if theta is not None:
            self.theta = np.asarray(theta, dtype=np.float64)
        else:
            # A sample whose inputs are all near 0 in a network without biases has every pre-activation
            # near the kink whatever the weights: tries are bounded, and such a model is `near_kink`.
            self.theta = rng.normal(0, scale, self.P)
            for _ in range(100):
                if activation != "relu" or np.min(np.abs(self.pre_activations())) >= KINK:
                    break
                self.theta = rng.normal(0, scale, self.P)
        self.near_kink = activation == "relu" and np.min(np.abs(self.pre_activations())) < KINK
        self.ok = self.forward()

    def pre_activations(self):
        W1, b1, W2, b2 = cv.unflatten(self.theta, *self.shape, self.bias)
        return ref.forward(self.X, W1, b1, W2, b2, **self.objective.family)[0]

    def forward(self):
        N, H = self.X.shape[0], self.shape[1]
        self.a1, self.d1, self.dd1 = np.empty((N, H)), np.empty((N, H)), np.empty((N, H))
        self.delta, self.ddelta, self.g = np.empty(N), np.empty(N), np.empty(N)
        return hs.forward(self.Xs, self.Y, self.theta, H, self.bias, ACTIVATIONS.index(self.activation),
                          ACTIVATIONS.index(self.output), self.loss == "bce", 1e-8, self.s2, self.r,
                          self.a1, self.d1, self.dd1, self.delta, self.ddelta, self.g)

    def hvp(self, v):
        out = np.empty(self.P)
        hs.hvp(self.Xs, self.theta, np.asarray(v, dtype=np.float64), self.shape[1], self.bias, self.s2, self.l2,
               self.decay_biases, self.a1, self.d1, self.dd1, self.delta, self.ddelta, out)
        return out

    def hessian(self):
        """The exact Hessian, column by column from `hvp` (not symmetrised)."""
        return np.column_stack([self.hvp(e) for e in np.eye(self.P)])

    def top(self, root=None):
        root = np.ones(self.P) if root is None else np.asarray(root, dtype=np.float64)
        return hs.top_eigenvalue(self.Xs, self.theta, root, self.shape[1], self.bias, self.s2, self.l2,
                                 self.decay_biases, self.a1, self.d1, self.dd1, self.delta, self.ddelta)

    def ntk(self, rates=None):
        rates = np.ones(self.P) if rates is None else np.asarray(rates, dtype=np.float64)
        return hs.ntk_top(self.Xs, self.theta, rates, self.shape[1], self.bias, self.s2, self.r, self.a1, self.d1,
                          self.g)

    def reference_hessian(self):
        return self.objective.hessian(self.theta)


def family_id(v):
    return "-".join(str(x) for x in v) if isinstance(v, tuple) else str(v)


def grid_case(family, scaling, bias, index):
    """The family grid's model: reductions and decays cycle through the cases (each meets every family)."""
    activation, output, loss = family
    l2, decay_biases = DECAYS[index % len(DECAYS)]
    return Model(3, 4, 6, activation, output, loss, scaling, REDUCTIONS[index % 2], bias, l2, decay_biases,
                 seed=index, binary=index % 2 == 0)


GRID = [(f, s, b, i) for i, (f, s, b) in enumerate(itertools.product(FAMILIES, SCALINGS, [True, False]))]


def grid_id(case):
    f, s, b, i = case
    return f"{family_id(f)}-{s}-{'bias' if b else 'nobias'}-{REDUCTIONS[i % 2]}-l2{DECAYS[i % 3][0]}{DECAYS[i % 3][1]}"


@st.composite
def models(draw):
    """A small network of any family, scale and decay (D 1..4, H 1..6, N 1..8: the dense path)."""
    activation, output, loss = draw(st.sampled_from(FAMILIES))
    l2, decay_biases = draw(st.sampled_from([(0.0, False), (0.05, False), (0.05, True), (1.2, True)]))
    m = Model(draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 8)), activation, output,
              loss, draw(st.sampled_from(SCALINGS)), draw(st.sampled_from(REDUCTIONS)), draw(st.booleans()), l2,
              decay_biases, seed=draw(st.integers(0, 2 ** 32 - 1)), scale=draw(st.floats(0.3, 1.5)),
              binary=draw(st.booleans()))
    assume(not m.near_kink)
    return m


def assert_top_is(top, eigenvalues, rel):
    """top is the largest of eigenvalues to rel of the spectrum's largest magnitude (differences of the
    gradient are accurate relative to the matrix, not to a small largest eigenvalue)."""
    scale = max(np.max(np.abs(eigenvalues)), 1e-300)
    assert abs(top - eigenvalues[-1]) <= rel * scale, (top, eigenvalues[-1], scale)


# --- the forward pass ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", GRID[::5], ids=grid_id)
def test_forward_caches_are_the_references_activations_and_output_deltas(case):
    m = grid_case(*case)
    assert m.ok is True
    W1, b1, W2, b2 = cv.unflatten(m.theta, *m.shape, m.bias)
    fam = m.objective.family
    _, a1, _, a2 = ref.forward(m.X, W1, b1, W2, b2, **fam)
    np.testing.assert_allclose(m.a1, a1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m.d1, ref.activation_derivative(a1, m.activation), rtol=1e-12, atol=1e-15)
    dz2 = ref.reduce(ref.output_delta(a2, m.Y[:, None], m.loss, 1e-8, m.output), m.objective.reduction)[:, 0]
    np.testing.assert_allclose(m.delta, dz2, rtol=1e-10, atol=1e-15)
    g = a2[:, 0] * (1 - a2[:, 0]) if m.output == "sigmoid" else np.ones(len(a2))
    np.testing.assert_allclose(m.g, g, rtol=1e-10, atol=1e-15)


# --- Hessian-vector products ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_the_assembled_hessian_is_the_products_columns_in_every_family(case):
    """`hessian` (the dense path's matrix, summed directly) equals the matrix whose columns are the
    products of unit vectors, to rounding, and is symmetric exactly."""
    m = grid_case(*case)
    M = hs.hessian(m.Xs, m.theta, m.shape[1], m.bias, m.s2, m.l2, m.decay_biases, m.a1, m.d1, m.dd1, m.delta,
                   m.ddelta)
    np.testing.assert_array_equal(M, M.T)
    H = m.hessian()
    np.testing.assert_allclose(M, H, rtol=1e-12, atol=1e-13 * max(1.0, np.max(np.abs(H))))


@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_hvp_is_the_reference_hessian_times_v_in_every_family(case):
    m = grid_case(*case)
    H = m.reference_hessian()
    rng = np.random.default_rng(99)
    for v in [rng.normal(0, 1, m.P), np.eye(m.P)[0], np.eye(m.P)[-1]]:
        want = H @ v
        np.testing.assert_allclose(m.hvp(v), want, rtol=0, atol=1e-7 * np.max(np.abs(want)))
    exact = m.hessian()
    np.testing.assert_allclose(exact, H, rtol=0, atol=1e-7 * np.max(np.abs(H)))
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-13 * np.max(np.abs(exact)))


@settings(deadline=None, max_examples=200)
@given(models(), st.integers(0, 2 ** 32 - 1))
def test_hvp_and_the_dense_sharpness_against_the_reference_on_random_networks(m, seed):
    assert m.ok and m.P <= hs.DENSE_MAX
    H = m.reference_hessian()
    v = np.random.default_rng(seed).normal(0, 1, m.P)
    want = H @ v
    got = m.hvp(v)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7 * np.max(np.abs(want)) + 1e-300)
    exact = m.hessian()
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-13 * np.max(np.abs(exact)))
    np.testing.assert_allclose(exact @ v, got, rtol=0, atol=1e-12 * np.max(np.abs(got)) + 1e-300)  # linear in v
    top = m.top()
    assert_top_is(top, np.linalg.eigvalsh(H), 1e-6)
    assert_top_is(top, np.linalg.eigvalsh((exact + exact.T) / 2), 1e-12)


def test_the_hessian_of_the_l2_term_alone_covers_the_decaying_entries():
    """A network with zero output weights, zero biases and an identity output at its targets has a zero
    data term's Hessian on the weights' diagonal blocks: what is left on the diagonal is l2 where it decays."""
    D, H = 2, 3
    theta = np.zeros(D * H + 2 * H + 1)
    for decay_biases in (False, True):
        m = Model(D, H, 4, "tanh", "identity", l2=0.5, decay_biases=decay_biases, theta=theta)
        m.Y[:] = 0.0
        assert m.forward()
        diag = np.diag(m.hessian())
        want = np.where(cv._decaying(D, H, True, decay_biases), 0.5, 0.0)
        want[D * H + H:] += [np.sum(m.a1[:, h] ** 2) for h in range(H)] + [m.X.shape[0]]  # output layer: J^T J
        np.testing.assert_allclose(diag, want, rtol=1e-14, atol=1e-15)


# --- the sharpness ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_dense_sharpness_is_the_largest_eigenvalue_of_the_reference_hessian(case):
    m = grid_case(*case)
    assert m.P <= hs.DENSE_MAX
    eigenvalues = np.linalg.eigvalsh(m.reference_hessian())
    top = m.top()
    assert top == pytest.approx(eigenvalues[-1], rel=1e-6, abs=1e-9 * np.max(np.abs(eigenvalues)))
    assert top == pytest.approx(cv.sharpness(m.objective, m.theta), rel=1e-6, abs=1e-9 * np.max(np.abs(eigenvalues)))


LANCZOS = {
    "8-12-1-sigmoid-mse-standard-sum": dict(D=8, H=12, N=20),
    "8-12-1-relu-identity-ntk-mean-l2": dict(D=8, H=12, N=24, activation="relu", output="identity",
                                             scaling="ntk", reduction="mean", l2=0.1, decay_biases=True, seed=1),
    "8-12-1-tanh-bce-mean-field-l2": dict(D=8, H=12, N=16, activation="tanh", loss="bce", scaling="mean-field",
                                          l2=0.05, seed=2, binary=True),
    "8-12-1-identity-identity-nobias": dict(D=8, H=12, N=10, activation="identity", output="identity", bias=False,
                                            seed=3),
    "16-16-1-fractal": dict(D=16, H=16, N=64, activation="tanh", output="identity", scaling="mean-field",
                            reduction="mean", bias=False, seed=4, scale=1.0),
}


@pytest.mark.parametrize("name", list(LANCZOS))
def test_lanczos_sharpness_is_the_largest_eigenvalue_of_the_reference_hessian(name):
    m = Model(**LANCZOS[name])
    assert hs.DENSE_MAX < m.P <= hs.LANCZOS_MAX
    H = m.reference_hessian()
    eigenvalues = np.linalg.eigvalsh(H)
    top = m.top()
    assert top == pytest.approx(eigenvalues[-1], rel=1e-6)
    exact = m.hessian()
    assert top == pytest.approx(np.linalg.eigvalsh((exact + exact.T) / 2)[-1], rel=1e-9)


def test_lanczos_sharpness_past_lanczos_max_steps():
    """P > LANCZOS_MAX: the Krylov space stops short of all P dimensions and the top still converges."""
    m = Model(10, 40, 32, "tanh", "identity", scaling="ntk", reduction="mean", seed=5)
    assert m.P > hs.LANCZOS_MAX
    exact = m.hessian()
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-13 * np.max(np.abs(exact)))
    assert m.top() == pytest.approx(np.linalg.eigvalsh((exact + exact.T) / 2)[-1], rel=1e-6)


RATES = [(0.3, 0.3), (0.1, 0.5), (0.5, 0.02), (0.0, 0.4)]


@pytest.mark.parametrize("rates", RATES, ids=str)
@pytest.mark.parametrize("case", GRID[::7] + [("lanczos", 0, 0, 0)], ids=lambda c: "lanczos" if c[0] == "lanczos"
                         else grid_id(c))
def test_weighted_sharpness_is_the_references_edge_sharpness(case, rates):
    m = Model(**LANCZOS["8-12-1-tanh-bce-mean-field-l2"]) if case[0] == "lanczos" else grid_case(*case)
    D, H = m.shape
    rates = cv.layer_rates(D, H, m.bias, *rates)
    top = m.top(np.sqrt(rates))
    H_ref = m.reference_hessian()
    scale = np.max(np.abs(np.linalg.eigvalsh(np.sqrt(rates)[:, None] * H_ref * np.sqrt(rates)[None, :])))
    assert top == pytest.approx(cv.edge_sharpness(m.objective, m.theta, rates), rel=1e-6, abs=1e-9 * scale)


@pytest.mark.parametrize("lr", [0.05, 0.7, 3.0])
@pytest.mark.parametrize("name", ["dense", "lanczos"])
def test_one_rate_scales_the_sharpness(name, lr):
    m = grid_case(*GRID[4]) if name == "dense" else Model(**LANCZOS["8-12-1-sigmoid-mse-standard-sum"])
    one = m.top()
    assert one > 0
    rates = cv.layer_rates(*m.shape, m.bias, lr, lr)
    assert m.top(np.sqrt(rates)) == pytest.approx(lr * one, rel=1e-9)
    assert m.top(np.sqrt(rates)) == pytest.approx(lr * cv.sharpness(m.objective, m.theta), rel=1e-6)


def test_sharpness_is_deterministic():
    """Twice the same inputs, twice the same bits (the Lanczos start vector is fixed), with fresh caches too."""
    for m in (Model(**LANCZOS["16-16-1-fractal"]), Model(**LANCZOS["8-12-1-sigmoid-mse-standard-sum"]),
              grid_case(*GRID[3])):
        first = m.top()
        assert np.isfinite(first)
        assert m.top() == first
        m.forward()
        assert m.top() == first
        rates = np.sqrt(cv.layer_rates(*m.shape, m.bias, 0.2, 0.9))
        assert m.top(rates) == m.top(rates.copy())


# --- the NTK ---------------------------------------------------------------------------------------------

NTK_SHAPES = {"N<P": (3, 4, 5, True), "N=P": (2, 2, 9, True), "N>P": (1, 2, 8, False), "N>>P": (2, 3, 40, True)}


@pytest.mark.parametrize("shape", list(NTK_SHAPES))
@pytest.mark.parametrize("case", GRID[::6], ids=grid_id)
def test_ntk_top_is_the_largest_eigenvalue_of_the_references_ntk(case, shape):
    (activation, output, loss), scaling, _, index = case
    D, H, N, bias = NTK_SHAPES[shape]
    m = Model(D, H, N, activation, output, loss, scaling, REDUCTIONS[index % 2], bias, seed=index)
    assert (N <= m.P) == (shape in ("N<P", "N=P"))
    want = cv.largest_eigenvalue(cv.ntk(m.objective, m.theta))
    assert want > 0
    assert m.ntk() == pytest.approx(want, rel=1e-10)
    rates = cv.layer_rates(D, H, bias, 0.03, 0.6)
    assert m.ntk(rates) == pytest.approx(cv.largest_eigenvalue(cv.ntk(m.objective, m.theta, rates)), rel=1e-10)
    assert m.ntk(np.full(m.P, 0.25)) == pytest.approx(0.25 * want, rel=1e-12)


@settings(deadline=None, max_examples=150)
@given(models(), st.floats(0.01, 2.0), st.floats(0.01, 2.0))
def test_ntk_top_on_random_networks(m, lr_hidden, lr_output):
    for rates in (None, cv.layer_rates(*m.shape, m.bias, lr_hidden, lr_output)):
        K = cv.ntk(m.objective, m.theta, rates)
        scale = np.max(np.abs(np.linalg.eigvalsh(K)))
        assert m.ntk(rates) == pytest.approx(cv.largest_eigenvalue(K), rel=1e-10, abs=1e-13 * scale + 1e-300)


# --- non-finite parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_a_saturated_sigmoid_output_has_a_finite_curvature(loss):
    """A huge output weight saturates the output (a = 1 exactly): every derivative is finite, the Hessian
    is that of the L2 term and the NTK vanishes, as in the reference."""
    m = Model(2, 3, 5, "sigmoid", "sigmoid", loss, l2=0.2, seed=7, binary=True)
    m.theta[2 * 3 + 3:2 * 3 + 6] = 1e3
    assert m.forward()
    assert np.all(m.g == 0)
    top = m.top()
    assert np.isfinite(top) and top == pytest.approx(cv.sharpness(m.objective, m.theta), abs=1e-9)
    assert top == pytest.approx(0.2, rel=1e-12)
    assert m.ntk() == 0.0


POSITIONS = {"W1": 0, "b1": 6, "W2": 9, "b2": 12}  # theta's entries of a 2-3-1 network with biases


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_a_nan_in_theta_gives_a_nan_sharpness_and_no_exception(output, activation, position):
    """Whatever the layer, a NaN parameter makes `forward` report it and the sharpness and the NTK's
    eigenvalue NaN, as the reference's (even b2's, which an identity output's Jacobian does not involve)."""
    m = Model(2, 3, 4, activation, output, seed=11)
    m.theta[POSITIONS[position]] = np.nan
    assert np.isnan(cv.sharpness(m.objective, m.theta))
    ok = m.forward()
    top = m.top()
    assert not ok and np.isnan(top), (ok, top)
    ntk = m.ntk()
    assert np.isnan(ntk) and np.isnan(cv.largest_eigenvalue(cv.ntk(m.objective, m.theta))), ntk


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_theta_gives_a_nan_sharpness_as_the_reference(value, activation, position):
    """The reference's sharpness of a non-finite theta is NaN (curvature.edge_sharpness); the compiled one,
    read as a caller reads it (NaN where `forward` returns False), is NaN too."""
    m = Model(2, 3, 4, activation, "identity", seed=12)
    m.theta[POSITIONS[position]] = value
    ok = m.forward()
    assert np.isnan(cv.sharpness(m.objective, m.theta))
    got = m.top() if ok else np.nan
    assert np.isnan(got), (ok, got)


def test_a_nan_theta_on_the_lanczos_path_gives_nan():
    m = Model(**LANCZOS["8-12-1-sigmoid-mse-standard-sum"])
    m.theta[100] = np.nan  # an output weight
    assert not m.forward()
    assert np.isnan(m.top()) and np.isnan(m.ntk())


# --- the edge of stability -------------------------------------------------------------------------------

MOMENTA = [("gd", 0.0), ("gd", 0.5), ("gd", 0.9), ("gd", 0.99), ("nesterov", 0.0), ("nesterov", 0.5),
           ("nesterov", 0.9)]


@pytest.mark.parametrize("optimizer, momentum", MOMENTA)
def test_edge_threshold_is_the_formula_and_the_references(optimizer, momentum):
    want = 2 + 2 * momentum if optimizer == "gd" else (2 + 2 * momentum) / (1 + 2 * momentum)
    assert hs.edge_threshold(OPTIMIZERS.index(optimizer), momentum) == pytest.approx(want, rel=1e-15)
    assert cv.edge_threshold(optimizer, momentum) == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop"])
def test_adaptive_optimizers_have_no_edge_threshold(optimizer):
    for momentum in (0.0, 0.9):
        assert np.isnan(hs.edge_threshold(OPTIMIZERS.index(optimizer), momentum))
        assert cv.edge_threshold(optimizer, momentum) is None


def quadratic(optimizer, momentum, lr, curvature, steps=2000):
    """|p| along the torch-form update (kernels/optimizers.py's `update`) on J = curvature p^2 / 2, p0 = 1,
    in plain Python: heavy ball v = mu v + g, p -= lr v; nesterov v = mu v + g, p -= lr (g + mu v)."""
    p, v, path = 1.0, 0.0, []
    for _ in range(steps):
        g = curvature * p
        v = momentum * v + g
        p -= lr * (g + momentum * v) if optimizer == "nesterov" else lr * v
        path.append(abs(p))
    return np.array(path)


def compiled_quadratic(optimizer, momentum, lr, curvature, steps=2000):
    """The same through the kernels' own `update` (no decay, no adaptive state)."""
    code, p, v, path = OPTIMIZERS.index(optimizer), 1.0, 0.0, []
    for _ in range(steps):
        p, v, _ = optimizers.update(p, curvature * p, v, 0.0, code, False, lr, momentum, 0.0, 1.0, 0.0, 1.0, 0.0,
                                    0.0, 1.0, 0.0, 1.0)
        path.append(abs(p))
    return np.array(path)


@pytest.mark.parametrize("optimizer, momentum", MOMENTA)
def test_edge_threshold_separates_stable_and_unstable_updates_on_a_quadratic(optimizer, momentum):
    """lr * lambda 1% below the threshold: bounded and shrinking over 2000 steps; 1% above: growing."""
    edge = hs.edge_threshold(OPTIMIZERS.index(optimizer), momentum)
    curvature = 3.7
    for factor in (0.99, 1.01):
        lr = factor * edge / curvature
        path = quadratic(optimizer, momentum, lr, curvature)
        np.testing.assert_allclose(compiled_quadratic(optimizer, momentum, lr, curvature), path, rtol=1e-12)
        if factor < 1:
            assert np.max(path) < 50 and path[-1] < 1e-3, (factor, np.max(path), path[-1])
        else:
            assert path[-1] > 1e3 and path[-1] > 10 * np.max(path[:1000]), (factor, path[-1])

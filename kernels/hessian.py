"""Curvature of one network in compiled code: Hessian-vector products, the sharpness, the NTK's largest
eigenvalue. The kernels call these once per run and state with `diagnostics` (kernels/kernel.py); the
definitions, and the plain NumPy ground truth they are tested against, are in kernels/curvature.py.

Everything here is float64 whatever the run's working precision, on one network's parameters flattened
as theta (curvature.py's order: W1 (D, H) row by row, b1, W2, b2; no biases without bias) and on the
kernel's inputs (X times s1, so the input scale needs no further factor).

Hessian-vector products are exact: Pearlmutter's R-operator, the directional derivative of the analytic
gradient the run follows (`reference.gradients`, with the reduction's factor r and the L2 term of
weight decay), by forward-over-reverse differentiation written out for the one hidden layer:

    R z1 = X V1 + c1,   R a1 = f'(z1) R z1,   R z2 = s2 (R a1 . W2 + a1 . V2) + c2
    delta = r dl/dz2,   R delta = r d2l/dz2^2 R z2
    R gW2 = s2 sum_n (R a1 delta + a1 R delta),   R gb2 = sum_n R delta
    R dz1 = s2 ((R delta W2 + delta V2) f'(z1) + delta W2 f''(z1) R z1),   R gW1 = X^T R dz1,   R gb1 = sum_n R dz1

The sharpness (the largest algebraic eigenvalue of the Hessian): for up to `DENSE_MAX` parameters the
Hessian is assembled (`hessian`: the same derivatives as the products, summed as a matrix) and its
eigenvalues taken by LAPACK; beyond, Lanczos
with full reorthogonalisation from a fixed start vector, stopped when the largest Ritz value's residual
|beta_k s_k| (a bound on its distance to an eigenvalue of H) is below `LANCZOS_TOL` times the largest
|Ritz value|, or after min(P, `LANCZOS_MAX`) steps (a Krylov space of all P dimensions is exact).
"""
import numpy as np
from numba import njit

from kernels.activations import activate, slope, slope_derivative
from kernels.jit import KERNEL_JIT
from kernels.losses import bce_delta, bce_delta_slope, mse_delta, mse_delta_linear, mse_delta_slope
from kernels.vocab import GD, NESTEROV, SIGMOID

DENSE_MAX = 64
LANCZOS_TOL = 1e-10
LANCZOS_MAX = 300
LANCZOS_CHECK = 8  # steps between checks of the Ritz residual (each check solves the tridiagonal problem)


@njit(**KERNEL_JIT)
def edge_threshold(optimizer, momentum):
    """The value of lr times the sharpness above which gradient descent on a quadratic of that curvature is
    unstable: 2 + 2 mu (gd, heavy-ball momentum mu), (2 + 2 mu) / (1 + 2 mu) (nesterov); NaN for the
    adaptive optimizers, which have no fixed threshold."""
    if optimizer == GD:
        return 2.0 + 2.0 * momentum
    if optimizer == NESTEROV:
        return (2.0 + 2.0 * momentum) / (1.0 + 2.0 * momentum)
    return np.nan


@njit(**KERNEL_JIT)
def _decays(i, n1, hidden, bias, decay_biases):
    """Whether entry i of theta is in the L2 term: the weights, and the biases (b1 after the n1 entries of W1,
    b2 last) with decay_biases."""
    if not bias or decay_biases:
        return True
    return not (n1 <= i < n1 + hidden or i == n1 + 2 * hidden)


@njit(**KERNEL_JIT)
def _hidden_input(X, n, theta, h, hidden, bias):
    """Sample n's pre-activation of hidden unit h under the parameters theta: X_n . W1[:, h] + b1_h."""
    n_inputs = X.shape[1]
    z = 0.0
    for d in range(n_inputs):
        z += np.float64(X[n, d]) * theta[d * hidden + h]
    if bias:
        z += theta[n_inputs * hidden + h]
    return z


@njit(**KERNEL_JIT)
def forward(X, Y, theta, hidden, bias, act, out, bce, eps, s2, r, a1, d1, dd1, delta, ddelta, g):
    """The forward pass of theta, and what the products need of it (N samples, H hidden units, float64):
    a1, d1, dd1 (N, H) get f(z1), f'(z1), f''(z1); delta, ddelta (N,) r dl/dz2 and r d2l/dz2^2; g (N,) the
    output unit's slope d a2 / d z2. act, out: activation codes of the hidden and output units; bce: the
    loss is BCE (with eps), else MSE. Returns False where a derivative is not finite (the curvature is
    then NaN)."""
    n_samples, n_inputs = X.shape
    n1 = n_inputs * hidden
    o_w2 = n1 + hidden if bias else n1
    for i in range(theta.shape[0]):
        if not np.isfinite(theta[i]):  # an infinite weight can make every derivative 0: no curvature to take
            return False
    ok = True
    for n in range(n_samples):
        u2 = 0.0
        for h in range(hidden):
            a = activate(_hidden_input(X, n, theta, h, hidden, bias), act, 1.0)
            a1[n, h] = a
            d1[n, h] = slope(a, act, 1.0)
            dd1[n, h] = slope_derivative(a, act, 1.0)
            u2 += a * theta[o_w2 + h]
        z2 = s2 * u2 + (theta[o_w2 + hidden] if bias else 0.0)
        y = np.float64(Y[n])
        if out == SIGMOID:
            a = activate(z2, SIGMOID, 1.0)
            g[n] = slope(a, SIGMOID, 1.0)
            if bce:
                delta[n] = r * bce_delta(a, y, eps, 1.0)
                ddelta[n] = r * bce_delta_slope(a, y, eps, 1.0)
            else:
                delta[n] = r * mse_delta(a, y, 1.0)
                ddelta[n] = r * mse_delta_slope(a, y, 1.0)
        else:
            g[n] = 1.0
            delta[n] = r * mse_delta_linear(z2, y)
            ddelta[n] = r
        if not (np.isfinite(delta[n]) and np.isfinite(ddelta[n])):
            ok = False
    return ok


@njit(**KERNEL_JIT)
def hvp(X, theta, v, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta, out):
    """out = H v, H the Hessian of the objective at theta (the module docstring), from `forward`'s cache."""
    n_samples, n_inputs = X.shape
    n1 = n_inputs * hidden
    o_w2 = n1 + hidden if bias else n1
    for i in range(out.shape[0]):
        out[i] = 0.0
    rz1 = np.empty(hidden)
    for n in range(n_samples):
        rz2 = 0.0
        for h in range(hidden):
            z = _hidden_input(X, n, v, h, hidden, bias)  # R z1: z1's map applied to the direction
            rz1[h] = z
            rz2 += d1[n, h] * z * theta[o_w2 + h] + a1[n, h] * v[o_w2 + h]
        rz2 = s2 * rz2
        if bias:
            rz2 += v[o_w2 + hidden]
        dl = delta[n]
        rdl = ddelta[n] * rz2
        if bias:
            out[o_w2 + hidden] += rdl
        for h in range(hidden):
            w2 = theta[o_w2 + h]
            out[o_w2 + h] += s2 * (d1[n, h] * rz1[h] * dl + a1[n, h] * rdl)
            rdz1 = s2 * ((rdl * w2 + dl * v[o_w2 + h]) * d1[n, h] + dl * w2 * dd1[n, h] * rz1[h])
            for d in range(n_inputs):
                out[d * hidden + h] += np.float64(X[n, d]) * rdz1
            if bias:
                out[n1 + h] += rdz1
    if l2 != 0.0:
        for i in range(out.shape[0]):
            if _decays(i, n1, hidden, bias, decay_biases):
                out[i] += l2 * v[i]


@njit(**KERNEL_JIT)
def hessian(X, theta, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta):
    """The Hessian (P, P) of the objective at theta, assembled directly (the products of `hvp` are its
    columns): sum over samples of r d2l/dz2^2 j j^T (j = d z2 / d theta, the Gauss-Newton part) and
    r dl/dz2 times the Hessian of z2, whose only entries pair a hidden unit's input weights and bias with
    each other (s2 W2_h f''(z1_h) x x^T, x the inputs and 1) and with its output weight (s2 f'(z1_h) x);
    plus the L2 term on the diagonal."""
    n_samples, n_inputs = X.shape
    p = theta.shape[0]
    n1 = n_inputs * hidden
    o_w2 = n1 + hidden if bias else n1
    M = np.zeros((p, p))
    j = np.empty(p)
    xt = np.empty(n_inputs + 1)  # a sample's inputs, then the bias's 1
    idx = np.empty(n_inputs + 1, np.int64)  # where a hidden unit's input weights and bias sit in theta
    for n in range(n_samples):
        for h in range(hidden):
            w2 = theta[o_w2 + h]
            slope = d1[n, h]
            for d in range(n_inputs):
                j[d * hidden + h] = s2 * w2 * slope * np.float64(X[n, d])
            if bias:
                j[n1 + h] = s2 * w2 * slope
            j[o_w2 + h] = s2 * a1[n, h]
        if bias:
            j[o_w2 + hidden] = 1.0
        dd = ddelta[n]
        for i in range(p):  # the lower triangle; mirrored below
            c = dd * j[i]
            for k in range(i + 1):
                M[i, k] += c * j[k]
        dl = delta[n]
        for d in range(n_inputs):
            xt[d] = np.float64(X[n, d])
        xt[n_inputs] = 1.0
        m = n_inputs + 1 if bias else n_inputs
        for h in range(hidden):
            for d in range(n_inputs):
                idx[d] = d * hidden + h
            if bias:
                idx[n_inputs] = n1 + h
            curve = dl * s2 * theta[o_w2 + h] * dd1[n, h]
            cross = dl * s2 * d1[n, h]
            for a in range(m):
                ia = idx[a]
                M[o_w2 + h, ia] += cross * xt[a]  # W2_h comes after every input weight and bias: lower
                if curve != 0.0:
                    for b in range(a + 1):
                        ib = idx[b]  # idx rises with a: (ia, ib) is in the lower triangle
                        M[ia, ib] += curve * xt[a] * xt[b]
    for i in range(p):
        for k in range(i):
            M[k, i] = M[i, k]
    if l2 != 0.0:
        for i in range(p):
            if _decays(i, n1, hidden, bias, decay_biases):
                M[i, i] += l2
    return M


@njit(**KERNEL_JIT)
def _product(X, theta, v, root, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta, tmp, out):
    """out = R H R v, R = diag(root): the Hessian weighted by the parameters' learning rates (root all 1:
    the Hessian)."""
    for i in range(v.shape[0]):
        tmp[i] = root[i] * v[i]
    hvp(X, theta, tmp, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta, out)
    for i in range(v.shape[0]):
        out[i] *= root[i]


@njit(**KERNEL_JIT)
def _start_vector(q):
    """A fixed start vector of unit length, entries of mixed signs from Knuth's multiplicative hash of their
    index (integer arithmetic: the same on every machine), so that it is unlikely to be orthogonal to the
    top eigenvector whatever the network's symmetries."""
    norm = 0.0
    for i in range(q.shape[0]):
        x = ((i + 1) * 2654435761) % 4294967296 / 4294967296.0 - 0.5
        q[i] = x
        norm += x * x
    norm = np.sqrt(norm)
    for i in range(q.shape[0]):
        q[i] /= norm


@njit(**KERNEL_JIT)
def top_eigenvalue(X, theta, root, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta):
    """The largest eigenvalue of R H R (the module docstring says how and to what tolerance); NaN where
    theta is not finite."""
    p = theta.shape[0]
    if not np.all(np.isfinite(theta)):
        return np.nan
    if p <= DENSE_MAX:
        M = hessian(X, theta, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta)
        for i in range(p):
            for k in range(p):
                M[i, k] *= root[i] * root[k]
        if not np.all(np.isfinite(M)):
            return np.nan
        return np.linalg.eigvalsh(M)[-1]

    m = min(p, LANCZOS_MAX)
    tmp = np.empty(p)
    Q = np.empty((m + 1, p))
    alpha = np.zeros(m)
    beta = np.zeros(m)
    w = np.empty(p)
    _start_vector(Q[0])
    top = np.nan
    for k in range(m):
        _product(X, theta, Q[k], root, hidden, bias, s2, l2, decay_biases, a1, d1, dd1, delta, ddelta, tmp, w)
        a = 0.0
        for i in range(p):
            a += w[i] * Q[k, i]
        alpha[k] = a
        if not np.isfinite(a):
            return np.nan
        for _ in range(2):  # full reorthogonalisation, twice (Gram-Schmidt's second pass repairs the first)
            for j in range(k + 1):
                c = 0.0
                for i in range(p):
                    c += w[i] * Q[j, i]
                for i in range(p):
                    w[i] -= c * Q[j, i]
        b = 0.0
        for i in range(p):
            b += w[i] * w[i]
        b = np.sqrt(b)
        beta[k] = b
        if not np.isfinite(b):
            return np.nan
        last = k + 1 == m or b <= 1e-300
        if last or (k + 1) % LANCZOS_CHECK == 0:
            T = np.zeros((k + 1, k + 1))
            for i in range(k + 1):
                T[i, i] = alpha[i]
                if i < k:
                    T[i, i + 1] = beta[i]
                    T[i + 1, i] = beta[i]
            values, vectors = np.linalg.eigh(T)
            top = values[k]
            scale = max(abs(values[0]), abs(values[k]))
            if last or b * abs(vectors[k, k]) <= LANCZOS_TOL * scale:
                return top
        for i in range(p):
            Q[k + 1, i] = w[i] / b
    return top


@njit(**KERNEL_JIT)
def ntk_top(X, theta, rates, hidden, bias, s2, r, a1, d1, g):
    """The largest eigenvalue of r Jo diag(rates) Jo^T, Jo (N, P) the Jacobian of the outputs over theta
    (curvature.py's `ntk`), from `forward`'s cache. Taken as that of the smaller of the N x N kernel and
    the P x P matrix r diag(rates)^(1/2) Jo^T Jo diag(rates)^(1/2), which share their non-zero eigenvalues.
    NaN where theta is not finite."""
    n_samples, n_inputs = X.shape
    p = theta.shape[0]
    if not np.all(np.isfinite(theta)):
        return np.nan
    n1 = n_inputs * hidden
    o_w2 = n1 + hidden if bias else n1
    J = np.zeros((n_samples, p))
    for n in range(n_samples):
        for h in range(hidden):
            dz1 = g[n] * s2 * theta[o_w2 + h] * d1[n, h]
            for d in range(n_inputs):
                J[n, d * hidden + h] = np.float64(X[n, d]) * dz1
            if bias:
                J[n, n1 + h] = dz1
            J[n, o_w2 + h] = g[n] * s2 * a1[n, h]
        if bias:
            J[n, o_w2 + hidden] = g[n]
    for i in range(p):
        root = np.sqrt(rates[i])
        for n in range(n_samples):
            J[n, i] *= root
    small = min(n_samples, p)
    K = np.zeros((small, small))
    for i in range(small):
        for k in range(i + 1):
            s = 0.0
            if n_samples <= p:
                for c in range(p):
                    s += J[i, c] * J[k, c]
            else:
                for n in range(n_samples):
                    s += J[n, i] * J[n, k]
            K[i, k] = r * s
            K[k, i] = r * s
    if not np.all(np.isfinite(K)):
        return np.nan
    return np.linalg.eigvalsh(K)[-1]

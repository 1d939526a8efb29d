"""Curvature of one network in plain NumPy: the objective, its Hessian and sharpness, the empirical NTK and
the edge of stability. The ground truth of the per-run diagnostics (issue 18), built on the functions of
`kernels.reference`; slow and simple, for networks of up to a few hundred parameters.

The objective. A run follows `reference.gradients`: the loss's output delta summed over the samples, or
divided by N with the mean reduction. That is the gradient of

    J(theta) = r * sum_n l(a_n, y_n) + (wd / 2) * |theta_decaying|^2
    l = (a - y)^2 / 2 (MSE),   l = -(y log(a + eps) + (1 - y) log(1 - a + eps)) (BCE)

with r = 1 (sum) or 1/N (mean), and the L2 term only where weight decay is in the gradient (every
optimizer but adamw; weights, and biases with decay_biases). theta is the trained parameters flattened:
W1 (D, H) row by row, b1, W2, b2 (the biases only with biases).

Sharpness: the largest (algebraic) eigenvalue of the Hessian of J, which is computed by central
differences of the analytic gradient, column by column (step 1e-5 * max(1, |theta_i|)), then symmetrised.

NTK: Jo (N, P), the analytic Jacobian of the outputs a2 over theta, and the kernel K = r Jo Jo^T. To first
order, gradient descent at rate lr moves the outputs of an MSE run as a - y -> (I - lr K)(a - y), so
lr * lambda_max(K) = 2 is where they stop converging: the lazy/catapult boundary of Lewkowycz et al.
(2020), who write the loss as the mean (1/2n) sum (f - y)^2 (here: MSE with the mean reduction; with the
sum the kernel is N times larger and so is lr's effect). With per-layer learning rates the kernel of the
update is r Jo diag(lr) Jo^T, and `lr_lambda0` is its largest eigenvalue (lr times lambda_0 when the
layers share one rate).

Edge of stability: on a quadratic of curvature lambda, the update is stable while lr * lambda is below
2 (gd), 2 + 2 mu (heavy ball, momentum mu) or (2 + 2 mu) / (1 + 2 mu) (nesterov). With per-layer rates
the quantity is the largest eigenvalue of P^(1/2) H P^(1/2), P the diagonal of each parameter's rate,
which is lr times the sharpness when the rates are equal. Adaptive optimizers (adam, adamw, rmsprop)
have no such fixed threshold: `edge_threshold` gives None for them.
"""
import numpy as np

from kernels import reference as ref


def parameters(W1, b1, W2, b2, bias=True):
    """theta: the trained parameters flattened (W1 row by row, b1, W2, b2; no biases without bias)."""
    parts = [np.ravel(W1), np.ravel(b1), np.ravel(W2), np.ravel(b2)] if bias else [np.ravel(W1), np.ravel(W2)]
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])


def unflatten(theta, n_inputs, hidden, bias=True):
    """(W1 (D, H), b1 (1, H) or None, W2 (H, 1), b2 (1, 1) or None) of theta, in the reference's layout."""
    n1 = n_inputs * hidden
    W1 = theta[:n1].reshape(n_inputs, hidden)
    if not bias:
        return W1, None, theta[n1:n1 + hidden].reshape(hidden, 1), None
    b1 = theta[n1:n1 + hidden].reshape(1, hidden)
    W2 = theta[n1 + hidden:n1 + 2 * hidden].reshape(hidden, 1)
    return W1, b1, W2, theta[n1 + 2 * hidden:].reshape(1, 1)


def _decaying(n_inputs, hidden, bias, decay_biases):
    """Which entries of theta the L2 term covers: the weights, and the biases with decay_biases."""
    n1 = n_inputs * hidden
    mask = np.ones(n1 + 2 * hidden + 1 if bias else n1 + hidden, dtype=bool)
    if bias and not decay_biases:
        mask[n1:n1 + hidden] = False
        mask[-1] = False
    return mask


class Objective:
    """J(theta) and its gradient for one run's data, model and loss (module docstring); `l2` is the weight
    decay in the gradient (0 for adamw, whose decay is not)."""

    def __init__(self, X, Y, n_inputs, hidden, *, loss="mse", bce_eps=1e-8, activation="sigmoid",
                 output="sigmoid", scaling="standard", reduction="sum", bias=True, l2=0.0, decay_biases=False):
        ref.check_family(activation, output, scaling, reduction, loss)
        self.X = np.asarray(X, dtype=np.float64)
        self.y = np.asarray(Y, dtype=np.float64).reshape(-1, 1)
        self.shape = (n_inputs, hidden, bias)
        self.loss, self.bce_eps, self.reduction = loss, bce_eps, reduction
        self.family = dict(activation=activation, output=output, scaling=scaling)
        self.l2 = float(l2)
        self.decaying = _decaying(n_inputs, hidden, bias, decay_biases)
        self.r = 1.0 if reduction == "sum" else 1.0 / self.X.shape[0]

    def outputs(self, theta):
        return ref.forward(self.X, *unflatten(theta, *self.shape), **self.family)

    def value(self, theta):
        a2 = self.outputs(theta)[3]
        a, y = a2, self.y
        if self.loss == "mse":
            terms = (a - y) ** 2 / 2
        else:
            terms = -(y * np.log(a + self.bce_eps) + (1 - y) * np.log(1 - a + self.bce_eps))
        return self.r * float(np.sum(terms)) + self.l2 / 2 * float(np.sum(theta[self.decaying] ** 2))

    def gradient(self, theta):
        W1, b1, W2, b2 = unflatten(theta, *self.shape)
        _, a1, _, a2 = ref.forward(self.X, W1, b1, W2, b2, **self.family)
        grads = ref.gradients(self.X, self.y, a1, a2, W2, self.loss, self.bce_eps, **self.family,
                              reduction=self.reduction, bias=self.shape[2])
        g = parameters(*grads, bias=self.shape[2])
        return g + self.l2 * np.where(self.decaying, theta, 0.0)

    def hessian(self, theta):
        """Central differences of the analytic gradient, column by column, symmetrised."""
        theta = np.asarray(theta, dtype=np.float64)
        H = np.empty((theta.size, theta.size))
        for i in range(theta.size):
            h = 1e-5 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            H[:, i] = (self.gradient(up) - self.gradient(down)) / (2 * h)
        return (H + H.T) / 2

    def output_jacobian(self, theta):
        """Jo (N, P): d a2_n / d theta, analytically (the chain rule of the forward pass)."""
        n_inputs, hidden, bias = self.shape
        W1, b1, W2, b2 = unflatten(theta, *self.shape)
        s1, s2 = ref.layer_scales(self.family["scaling"], n_inputs, hidden, np.dtype(np.float64))
        _, a1, _, a2 = ref.forward(self.X, W1, b1, W2, b2, **self.family)
        g = a2 * (1 - a2) if self.family["output"] == "sigmoid" else np.ones_like(a2)  # (N, 1)
        dz1 = g * s2 * W2.T * ref.activation_derivative(a1, self.family["activation"])  # d a2 / d z1, (N, H)
        dW1 = s1 * self.X[:, :, None] * dz1[:, None, :]  # (N, D, H)
        dW2 = g * s2 * a1  # (N, H)
        parts = [dW1.reshape(len(a2), -1)]
        if bias:
            parts += [dz1, dW2, g]
        else:
            parts += [dW2]
        return np.concatenate(parts, axis=1)


def sharpness(objective, theta):
    """The largest eigenvalue of the Hessian of the objective at theta; NaN where theta or the Hessian is
    not finite."""
    return edge_sharpness(objective, theta, np.ones(np.size(theta)))


def layer_rates(n_inputs, hidden, bias, lr_hidden, lr_output):
    """Each entry of theta's learning rate: lr_hidden for W1 and b1, lr_output for W2 and b2."""
    n_hidden_layer = n_inputs * hidden + (hidden if bias else 0)
    return np.concatenate([np.full(n_hidden_layer, float(lr_hidden)), np.full(hidden + (1 if bias else 0),
                                                                              float(lr_output))])


def edge_sharpness(objective, theta, rates):
    """The largest eigenvalue of P^(1/2) H P^(1/2), P = diag(rates): lr times the sharpness for one rate."""
    if not np.all(np.isfinite(theta)):
        return np.nan
    root = np.sqrt(rates)
    with np.errstate(all="ignore"):
        weighted = root[:, None] * objective.hessian(theta) * root[None, :]
    return float(np.linalg.eigvalsh(weighted)[-1]) if np.all(np.isfinite(weighted)) else np.nan


def edge_threshold(optimizer, momentum):
    """The value of `edge_sharpness` above which a quadratic's update is unstable, or None (adaptive):
    kernels/hessian.py's `edge_threshold` (one formula for the reference and the kernels)."""
    from kernels.hessian import edge_threshold as threshold
    from kernels.vocab import OPTIMIZERS

    value = threshold(OPTIMIZERS.index(optimizer), float(momentum))
    return None if np.isnan(value) else float(value)


def ntk(objective, theta, rates=None):
    """The empirical NTK of the outputs, r Jo diag(rates) Jo^T (rates None: r Jo Jo^T), (N, N); all NaN where
    theta is not finite."""
    if not np.all(np.isfinite(theta)):
        return np.full((objective.X.shape[0],) * 2, np.nan)
    Jo = objective.output_jacobian(theta)
    weighted = Jo if rates is None else Jo * rates[None, :]
    return objective.r * weighted @ Jo.T


def largest_eigenvalue(K):
    """The largest eigenvalue of a symmetric matrix; NaN where it is not finite."""
    return float(np.linalg.eigvalsh(K)[-1]) if np.all(np.isfinite(K)) else np.nan


def dynamics(losses, converged):
    """loss_peak_ratio (the largest loss of the run over the initial one) and catapult (the loss rose above
    the initial loss at some state and the run ended converged)."""
    losses = np.asarray(losses, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = float(np.max(losses) / losses[0]) if np.all(np.isfinite(losses)) else np.inf
    return {"loss_peak_ratio": peak, "catapult": bool(np.any(losses[1:] > losses[0]) and converged)}

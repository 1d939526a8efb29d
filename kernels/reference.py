"""Plain NumPy training of one network, written the way the seed notebooks
write it. No tricks: this is the ground truth the Numba kernels are tested
against, and it is tested against the notebooks' printed numbers.

Conventions (docs/parameters.md, "Conventions"):

* sigmoid everywhere, its derivative from the activation, a(1 - a);
* MSE: output delta (a - y) a(1 - a), summed over samples; loss mean((y - a)^2);
* BCE: loss -mean(y log(a + eps) + (1 - y) log(1 - a + eps)); output delta
  (-(y / (a + eps)) + (1 - y) / (1 - a + eps)) a(1 - a), summed over samples;
* so the MSE gradient is N/2 times the gradient of the reported loss, and
  BCE's N times (tested against finite differences);
* full-batch gradient descent, W -= lr * dW, or with momentum
  v = momentum * v + dW, W -= lr * v (momentum 0 is exactly plain GD).

"State e" is the network after e updates. Every state 0..epochs is evaluated
(forward pass, loss, criterion); the gradient of the last evaluated state is
computed but not applied and gives `grad_norm`. Statistics:

* epoch_converged: first state at which the criterion holds, else -1;
  criterion "margin": every output strictly within `margin` of its target;
  criterion "loss": loss <= tol;
* with early_stop the run ends at that state; a state whose loss is not
  finite ends the run as diverged (non-finite weights or gradients reach the
  loss one state later at the latest);
* epochs_run: updates applied (epochs, or fewer when stopped);
* final_* / outputs / accuracy / sat_*_end / grad_norm: at the last state;
* checkpoint_loss: loss at the given states, NaN for states not reached.
"""
import numpy as np

from kernels.vocab import SATURATION_Z


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(a):
    # assumes 'a' is already sigmoid(z)
    return a * (1 - a)


def loss_value(a, y, loss, bce_eps):
    """The notebooks' loss of outputs `a` against targets `y` (same shapes)."""
    if loss == "mse":
        return np.mean((y - a) ** 2)
    return -np.mean(y * np.log(a + bce_eps) + (1 - y) * np.log(1 - a + bce_eps))


def forward(X, W1, b1, W2, b2):
    """Row layout of notebooks 000/002: X (N, D), W1 (D, H), W2 (H, 1)."""
    z1 = X @ W1 + b1
    a1 = sigmoid(z1)
    z2 = a1 @ W2 + b2
    a2 = sigmoid(z2)
    return z1, a1, z2, a2


def gradients(X, y, a1, a2, W2, loss, bce_eps):
    """Backpropagation of the summed-over-samples loss gradient."""
    if loss == "mse":
        dA2 = a2 - y
    else:
        dA2 = -(y / (a2 + bce_eps)) + ((1 - y) / (1 - a2 + bce_eps))
    dZ2 = dA2 * sigmoid_derivative(a2)
    dW2 = a1.T @ dZ2
    db2 = np.sum(dZ2, axis=0, keepdims=True)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * sigmoid_derivative(a1)
    dW1 = X.T @ dZ1
    db1 = np.sum(dZ1, axis=0, keepdims=True)
    return dW1, db1, dW2, db2


def criterion_holds(a2, y, loss_now, criterion, margin, tol):
    if criterion == "margin":
        return bool(np.all(np.abs(a2 - y) < margin))
    return bool(loss_now <= tol)


def train_reference(X, Y, W1, b1, W2, b2, epochs, *, lr, loss="mse", bce_eps=1e-8,
                    momentum=0.0, criterion="margin", margin=0.4, tol=0.01,
                    early_stop=False, checkpoints=()):
    """Train one D-H-1 network; returns a dict of statistics and final weights.

    Shapes: X (N, D), Y (N,), W1 (D, H), b1 (H,), W2 (H,), b2 scalar. The
    arrays are copied, never changed. The dtype of W1 is the working precision.
    """
    dtype = np.asarray(W1).dtype
    X = np.asarray(X, dtype=dtype)
    y = np.asarray(Y, dtype=dtype).reshape(-1, 1)
    W1 = np.array(W1, dtype=dtype)
    b1 = np.array(b1, dtype=dtype).reshape(1, -1)
    W2 = np.array(W2, dtype=dtype).reshape(-1, 1)
    b2 = np.array(b2, dtype=dtype).reshape(1, 1)
    lr = dtype.type(lr)
    bce_eps = dtype.type(bce_eps)
    momentum = dtype.type(momentum)
    checkpoints = [int(c) for c in checkpoints]
    vel = [np.zeros_like(p) for p in (W1, b1, W2, b2)]

    checkpoint_loss = np.full(len(checkpoints), np.nan)
    epoch_converged = -1
    min_loss = np.inf
    diverged = False
    for e in range(epochs + 1):
        z1, a1, z2, a2 = forward(X, W1, b1, W2, b2)
        loss_now = loss_value(a2, y, loss, bce_eps)
        for k, c in enumerate(checkpoints):
            if c == e:
                checkpoint_loss[k] = loss_now
        holds = criterion_holds(a2, y, loss_now, criterion, margin, tol)
        if e == 0:
            sat_hidden_start = np.mean(np.abs(z1) > SATURATION_Z)
            sat_output_start = np.mean(np.abs(z2) > SATURATION_Z)
        if loss_now < min_loss:
            min_loss = loss_now
        if holds and epoch_converged < 0:
            epoch_converged = e
        grads = gradients(X, y, a1, a2, W2, loss, bce_eps)
        if not np.isfinite(loss_now):
            diverged = True
            break
        if e == epochs or (early_stop and holds):
            break
        params = (W1, b1, W2, b2)
        for p, g, v in zip(params, grads, vel):
            if momentum:
                v *= momentum
                v += g
                p -= lr * v
            else:
                p -= lr * g

    return {
        "epoch_converged": epoch_converged,
        "converged": holds and not diverged,
        "epochs_run": e,
        "final_loss": float(loss_now),
        "min_loss": float(min_loss),
        "final_mse": float(np.mean((y - a2) ** 2)),
        "accuracy": float(np.mean((a2 > 0.5) == (y > 0.5))),
        "outputs": a2[:, 0].copy(),
        "sat_hidden_start": float(sat_hidden_start),
        "sat_output_start": float(sat_output_start),
        "sat_hidden_end": float(np.mean(np.abs(z1) > SATURATION_Z)),
        "sat_output_end": float(np.mean(np.abs(z2) > SATURATION_Z)),
        "grad_norm": float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))),
        "diverged": diverged,
        "checkpoint_loss": checkpoint_loss,
        "W1": W1, "b1": b1[0], "W2": W2[:, 0], "b2": b2[0, 0],
    }

"""The NumPy peers the kernels are benchmarked against.

Both train D-H-1 sigmoid networks by full-batch gradient descent on the MSE
loss with the seed notebooks' conventions (docs/parameters.md, "Conventions"):
sigmoid everywhere, output delta (a - y) a(1 - a) summed over samples (no
1/N), W -= lr * dW, loss reported = mean((y - a)^2).

* `train_loop` is notebook 002's loop, one network, 2-D arrays, verbatim but
  for the print turned into `record_every`.
* `train_batched` trains L networks at once with 3-D arrays, networks in the
  last axis (the kernels' layout). It is meant as the honest best effort of a
  good NumPy programmer, not a straw man: preallocated buffers, `out=`
  everywhere, the biases folded into the GEMMs, the hidden-layer parameters
  stored negated (no pass to negate z1 before `exp`), lr folded into the
  output delta, the hidden delta in one broadcast pass; large L in blocks of
  `block` lanes to bound memory. What each step gained, and what was tried
  and not used, is in docs/performance.md ("The batched NumPy peer").

  The arithmetic is the notebook's; only the order of a few roundings
  differs (bias summed inside the GEMM, lr applied to the delta), so it agrees
  with `train_loop` to ~1e-13 relative over hundreds of epochs, not bitwise.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["train_loop", "train_batched", "record_epochs"]


def record_epochs(epochs, record_every):
    """The epochs at which losses are recorded: 0, r, 2r, ... < epochs."""
    if record_every is None:
        return np.zeros(0, dtype=np.int64)
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1; got {record_every}")
    return np.arange(0, epochs, record_every, dtype=np.int64)


# --------------------------------------------------------------------------
# (a) The notebook's loop: one network.
# --------------------------------------------------------------------------

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def sigmoid_derivative(a):
    # assumes 'a' is already sigmoid(z)
    return a * (1 - a)


def train_loop(X, Y, W1, b1, W2, b2, lr, epochs, record_every=None):
    """Notebook 002's training loop for one network.

    X (N, D), Y (N, 1) (or (N,)), W1 (D, H), b1 (1, H) (or (H,)), W2 (H, 1)
    (or (H,)), b2 (1, 1) (or (1,)): float ndarrays, updated in place (views
    of the given arrays are reshaped to the notebook's 2-D shapes). Returns
    (W1, b1, W2, b2, losses): the given arrays and the losses of the epochs
    `record_epochs(epochs, record_every)` (the loss the notebook prints at
    `epoch % 1000 == 0`: computed in that epoch's forward pass, before its
    update).
    """
    params_in = (W1, b1, W2, b2)
    X = np.asarray(X, dtype=float)
    y = np.asarray(Y, dtype=float).reshape(-1, 1)
    hidden = W1.shape[1]
    b1, W2, b2 = b1.reshape(1, hidden), W2.reshape(hidden, 1), b2.reshape(1, 1)  # views
    learning_rate = lr
    losses = []

    for epoch in range(epochs):

        z1 = X @ W1 + b1
        a1 = sigmoid(z1)

        z2 = a1 @ W2 + b2
        y_hat = sigmoid(z2)

        loss = np.mean((y - y_hat) ** 2)

        dL_dyhat = y_hat - y
        dL_dz2 = dL_dyhat * sigmoid_derivative(y_hat)

        dW2 = a1.T @ dL_dz2
        db2 = np.sum(dL_dz2, axis=0, keepdims=True)

        dL_da1 = dL_dz2 @ W2.T
        dL_dz1 = dL_da1 * sigmoid_derivative(a1)

        dW1 = X.T @ dL_dz1
        db1 = np.sum(dL_dz1, axis=0, keepdims=True)

        W2 -= learning_rate * dW2
        b2 -= learning_rate * db2
        W1 -= learning_rate * dW1
        b1 -= learning_rate * db1

        if record_every is not None and epoch % record_every == 0:
            losses.append(loss)

    return (*params_in, np.array(losses, dtype=float))


# --------------------------------------------------------------------------
# (b) All networks at once, 3-D arrays.
# --------------------------------------------------------------------------

DEFAULT_BLOCK = 8192


def train_batched(X, Y, W1, b1, W2, b2, lr, epochs, record_every=None, block=DEFAULT_BLOCK, threads=1):
    """Train L networks at once; networks in the last axis.

    X (N, D), Y (N,) shared by all networks; W1 (D, H, L), b1 (H, L),
    W2 (H, L), b2 (L,) float ndarrays of one dtype (the kernels' layout),
    updated in place. Lanes are trained in slices of at most `block` lanes
    (all epochs for a slice, then the next) to bound the memory of the work
    buffers; with `threads` > 1 the lanes are cut into at least that many
    slices, trained in a thread pool. Returns (W1, b1, W2, b2, losses) with
    losses (len(record_epochs(...)), L).
    """
    n_inputs, hidden, n_lanes = W1.shape
    if b1.shape != (hidden, n_lanes) or W2.shape != (hidden, n_lanes) or b2.shape != (n_lanes,):
        raise ValueError("expected W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)")
    rec = record_epochs(epochs, record_every)
    dtype = W1.dtype
    losses = np.empty((rec.size, n_lanes), dtype=dtype)
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=dtype).reshape(-1)
    threads = max(1, int(threads))
    n_slices = min(n_lanes, max(-(-n_lanes // max(1, int(block))), threads))
    bounds = np.linspace(0, n_lanes, n_slices + 1).round().astype(int)

    def run(lo, hi):
        _train_block(X, Y, W1, b1, W2, b2, lo, hi, dtype.type(lr), epochs, rec, losses)

    if threads == 1 or n_slices == 1:
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            run(lo, hi)
    else:
        # slices write disjoint parts of the parameters and losses
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return W1, b1, W2, b2, losses


def _train_block(X, Y, W1, b1, W2, b2, lo, hi, lr, epochs, rec, losses):
    n_samples, n_inputs = X.shape
    hidden = W1.shape[1]
    L = hi - lo
    K = hidden * L
    dtype = W1.dtype

    # Hidden layer parameters (W1; b1) as one (D+1, H*L) matrix, negated:
    # Xa @ P1 = -(X @ W1 + b1) = -z1 for every sample and lane at once.
    P1 = np.empty((n_inputs + 1, K), dtype=dtype)
    P1[:n_inputs] = W1[:, :, lo:hi].reshape(n_inputs, K)
    P1[n_inputs] = b1[:, lo:hi].reshape(K)
    np.negative(P1, out=P1)
    w2 = np.ascontiguousarray(W2[:, lo:hi])          # (H, L)
    c2 = np.ascontiguousarray(b2[lo:hi])             # (L,)
    Xa = np.ones((n_samples, n_inputs + 1), dtype=dtype)
    Xa[:, :n_inputs] = X
    XaT = np.ascontiguousarray(Xa.T)
    Yc = Y.reshape(n_samples, 1)

    a1 = np.empty((n_samples, K), dtype=dtype)       # hidden activations
    t = np.empty((n_samples, K), dtype=dtype)        # hidden deltas
    a1_3 = a1.reshape(n_samples, hidden, L)
    t_3 = t.reshape(n_samples, hidden, L)
    z2 = np.empty((n_samples, L), dtype=dtype)
    a2 = np.empty((n_samples, L), dtype=dtype)
    d2 = np.empty((n_samples, L), dtype=dtype)       # output deltas (times lr)
    d2_3 = d2.reshape(n_samples, 1, L)
    u = np.empty((n_samples, L), dtype=dtype)
    dP1 = np.empty_like(P1)
    dW2 = np.empty((hidden, L), dtype=dtype)
    db2 = np.empty(L, dtype=dtype)
    next_rec = 0

    for epoch in range(epochs):
        # forward: a1 = 1 / (1 + exp(-z1)), a2 = sigmoid(sum_h a1 W2 + b2)
        np.matmul(Xa, P1, out=a1)
        np.exp(a1, out=a1)
        a1 += 1
        np.divide(1, a1, out=a1)
        np.einsum("nhl,hl->nl", a1_3, w2, out=z2)
        z2 += c2
        np.negative(z2, out=a2)
        np.exp(a2, out=a2)
        a2 += 1
        np.divide(1, a2, out=a2)

        if next_rec < rec.size and rec[next_rec] == epoch:
            np.subtract(Yc, a2, out=u)
            u *= u
            np.mean(u, axis=0, out=losses[next_rec, lo:hi])
            next_rec += 1

        # backward: d2 = lr (a2 - y) a2 (1 - a2)
        np.subtract(a2, Yc, out=d2)
        np.subtract(1, a2, out=u)
        u *= a2
        d2 *= u
        d2 *= lr
        np.einsum("nhl,nl->hl", a1_3, d2, out=dW2)   # lr dW2
        np.sum(d2, axis=0, out=db2)                  # lr db2
        # t = lr dZ1 = d2 W2 a1 (1 - a1), with W2 before its update
        np.multiply(d2_3, w2, out=t_3)
        t *= a1
        np.subtract(1, a1, out=a1)                   # a1 is not needed any more
        t *= a1
        np.matmul(XaT, t, out=dP1)                   # lr (dW1; db1)

        # update (P1 holds the negated parameters)
        w2 -= dW2
        c2 -= db2
        P1 += dP1

    np.negative(P1, out=P1)
    W1[:, :, lo:hi] = P1[:n_inputs].reshape(n_inputs, hidden, L)
    b1[:, lo:hi] = P1[n_inputs].reshape(hidden, L)
    W2[:, lo:hi] = w2
    b2[lo:hi] = c2

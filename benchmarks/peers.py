"""The NumPy peers the kernels are benchmarked against.

They train D-H-1 networks on the MSE loss with the seed notebooks'
conventions (docs/parameters.md, "Conventions"): output delta dL/dz2 summed
over samples (no 1/N, no factor 2), loss reported = mean((y - a)^2); all
but `train_batched_optimizer` by full-batch gradient descent, W -= lr * dW.

* `train_loop` is notebook 002's loop, one sigmoid network, 2-D arrays,
  verbatim but for the print turned into `record_every`.
* `train_batched` trains L networks at once with 3-D arrays, networks in the
  last axis (the kernels' layout). It is meant as the honest best effort of a
  good NumPy programmer, not a straw man: preallocated buffers, `out=`
  everywhere, the biases folded into the GEMMs, the hidden-layer parameters
  stored negated for sigmoid units (no pass to negate z1 before `exp`), lr
  folded into the output delta, the hidden delta in one broadcast pass; large
  L in blocks of `block` lanes to bound memory. What each step gained, and
  what was tried and not used, is in docs/performance.md ("The batched NumPy
  peer").

  It covers the kernels' model family (kernels.reference has the math):
  hidden activation sigmoid / tanh / relu / identity, output sigmoid /
  identity, biases or none, scaling standard / ntk / mean-field, reduction
  sum / mean, and a learning rate per layer (lr_hidden for W1 and b1,
  lr_output for W2 and b2; scalars or one per lane). Like the kernels it
  scales the inputs once (s1 X, rounded to the working precision) instead of
  X W1, and multiplies the output delta by 1/N for the mean reduction. For the
  default network (sigmoid, sigmoid, biases, standard, sum, one lr) it does
  exactly the operations it always did, so its results are unchanged to the
  bit.

  The arithmetic is the notebook's; only the order of a few roundings
  differs (bias summed inside the GEMM, lr applied to the delta), so it agrees
  with `train_loop` to ~1e-13 relative over hundreds of epochs, and with
  `kernels.reference.train_reference` to ~1e-12 over the family, not bitwise.
* `train_batched_optimizer` is the batched peer of the other update schemes
  (issue 17): the same networks, layout and model family, trained with
  gradient descent (heavy ball or Nesterov momentum), Adam or RMSprop, on the
  full batch or on minibatches of `batch_size` samples in dataset order (the
  last batch smaller; the mean reduction divides a batch's gradient by its
  size). The updates are kernels.reference's, operation for operation (the
  running products beta1^t and beta2^t, t counting updates); the gradients
  agree with the reference's to a few ulps (summed in another order). It is
  written the same way as `train_batched`: every parameter of a block of
  lanes in one flat vector, so that each pass of the optimizer is one ufunc
  call over all of them; preallocated buffers and `out=`; the biases folded
  into the GEMM; the parameters of sigmoid units stored negated (hidden
  layer: Xa @ P1 = -z1; sigmoid output: -z2 comes out of the forward pass
  with no extra pass), which changes no rounding (negation is exact); lr
  folded into the output delta for plain gradient descent. It keeps no
  statistics: `batched_mse` gives the final losses.
* `train_jax` is what a user would pick instead of `sweep` (issue 15):
  `jax.jit(jax.vmap(train_one))` with `lax.scan` over the epochs, sigmoid
  D-H-1 networks, MSE, full batch, the same conventions; it keeps no
  statistics, only the final weights and the final loss. JAX is imported
  only when this peer is used (the `bench` extra), so the module works
  without it.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels.batch import Variant
from kernels.vocab import ACTIVATIONS, OUTPUTS, REDUCTIONS, SCALINGS

__all__ = ["train_loop", "train_batched", "train_batched_optimizer", "record_epochs", "batched_mse", "train_jax",
           "compile_jax", "jax_version", "PEER_OPTIMIZERS"]


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


def layer_scales(scaling, n_inputs, hidden, dtype):
    """(s1, s2): the factors on X W1 and a1 W2, computed in float64 and rounded to `dtype`;
    None where the factor is 1 (the standard scaling multiplies by nothing)."""
    if scaling == "standard":
        return None, None
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}; got {scaling!r}")
    s1 = 1.0 / np.sqrt(n_inputs)
    s2 = 1.0 / np.sqrt(hidden) if scaling == "ntk" else 1.0 / hidden
    return dtype.type(s1), dtype.type(s2)


def _check_family(activation, output, bias, scaling, reduction):
    """The kernels' validation of a model (the same names, the same messages)."""
    Variant.of(activation, output, bias, scaling, reduction)


def _rate(value, dtype, what, n_lanes):
    """A learning rate as a scalar of `dtype`, or an (L,) array of it (one per lane)."""
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return dtype.type(arr)
    if arr.shape != (n_lanes,):
        raise ValueError(f"{what} must be a scalar or have one value per lane ({n_lanes}); got shape {arr.shape}")
    return arr


def train_batched(X, Y, W1, b1, W2, b2, lr=None, epochs=None, record_every=None, block=DEFAULT_BLOCK, threads=1, *,
                  lr_hidden=None, lr_output=None, activation="sigmoid", output="sigmoid", bias=True,
                  scaling="standard", reduction="sum"):
    """Train L networks at once; networks in the last axis.

    X (N, D), Y (N,) shared by all networks; W1 (D, H, L), b1 (H, L),
    W2 (H, L), b2 (L,) float ndarrays of one dtype (the kernels' layout),
    updated in place (with bias=False, b1 and b2 are ignored, None will do,
    and left alone). `lr` is the learning rate of both layers; lr_hidden (W1,
    b1) and lr_output (W2, b2) override it per layer; each is a scalar or
    one value per lane. The model: `activation` of the hidden units
    (sigmoid, tanh, relu, identity), `output` unit (sigmoid, identity),
    `bias`, `scaling` (standard, ntk, mean-field) and `reduction` (sum,
    mean) as in `kernels.train` (kernels.reference has the math); the loss
    is MSE. Lanes are trained in slices of at most `block` lanes (all epochs
    for a slice, then the next) to bound the memory of the work buffers;
    with `threads` > 1 the lanes are cut into at least that many slices,
    trained in a thread pool. Returns (W1, b1, W2, b2, losses) with losses
    (len(record_epochs(...)), L): the MSE of those epochs, before their update.
    """
    if epochs is None:
        raise TypeError("train_batched() needs epochs")
    _check_family(activation, output, bias, scaling, reduction)
    n_inputs, hidden, n_lanes = W1.shape
    shapes = [("W2", W2, (hidden, n_lanes))]
    if bias:
        shapes += [("b1", b1, (hidden, n_lanes)), ("b2", b2, (n_lanes,))]
    if any(np.shape(p) != shape for _, p, shape in shapes):
        raise ValueError("expected W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)")
    lr_hidden = lr if lr_hidden is None else lr_hidden
    lr_output = lr if lr_output is None else lr_output
    if lr_hidden is None or lr_output is None:
        raise TypeError("give lr, or both lr_hidden and lr_output")
    rec = record_epochs(epochs, record_every)
    dtype = W1.dtype
    losses = np.empty((rec.size, n_lanes), dtype=dtype)
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=dtype).reshape(-1)
    s1, s2 = layer_scales(scaling, n_inputs, hidden, dtype)
    model = dict(
        activation=activation, output=output, bias=bool(bias), s2=s2,
        # the mean reduction's factor on the output delta, as in the kernels: 1/N rounded to the dtype
        r=dtype.type(1.0 / X.shape[0]) if reduction == "mean" else None,
        lr_hidden=_rate(lr_hidden, dtype, "lr_hidden", n_lanes),
        lr_output=_rate(lr_output, dtype, "lr_output", n_lanes))
    if s1 is not None:
        X = X * s1          # s1 (X W1) as (s1 X) W1, once, as the kernels do
    threads = max(1, int(threads))
    n_slices = min(n_lanes, max(-(-n_lanes // max(1, int(block))), threads))
    bounds = np.linspace(0, n_lanes, n_slices + 1).round().astype(int)

    def run(lo, hi):
        _train_block(X, Y, W1, b1, W2, b2, lo, hi, epochs, rec, losses, **model)

    if threads == 1 or n_slices == 1:
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            run(lo, hi)
    else:
        # slices write disjoint parts of the parameters and losses
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return W1, b1, W2, b2, losses


def _lanes(rate, lo, hi):
    return rate if np.ndim(rate) == 0 else rate[lo:hi]


def _train_block(X, Y, W1, b1, W2, b2, lo, hi, epochs, rec, losses, *, activation, output, bias, s2, r,
                 lr_hidden, lr_output):
    n_samples, n_inputs = X.shape
    hidden = W1.shape[1]
    L = hi - lo
    K = hidden * L
    dtype = W1.dtype
    negated = activation == "sigmoid"
    rows = n_inputs + 1 if bias else n_inputs
    lrh, lro = _lanes(lr_hidden, lo, hi), _lanes(lr_output, lo, hi)
    # The hidden delta needs the output delta times lr_hidden s2; the default network (s2 = 1, one lr)
    # takes it from the output delta times lr_output, as it always did; the others get their own buffer.
    shared = s2 is None and np.array_equal(lrh, lro)
    lr_back = lrh if s2 is None else lrh * s2

    # Hidden layer parameters (W1; b1) as one (D+1, H*L) matrix (D rows without biases), negated for
    # sigmoid units: Xa @ P1 = -z1 for every sample and lane at once (else z1).
    P1 = np.empty((rows, K), dtype=dtype)
    P1[:n_inputs] = W1[:, :, lo:hi].reshape(n_inputs, K)
    if bias:
        P1[n_inputs] = b1[:, lo:hi].reshape(K)
    if negated:
        np.negative(P1, out=P1)
    w2 = np.ascontiguousarray(W2[:, lo:hi])          # (H, L)
    c2 = np.ascontiguousarray(b2[lo:hi]) if bias else None   # (L,)
    Xa = np.ones((n_samples, rows), dtype=dtype)
    Xa[:, :n_inputs] = X
    XaT = np.ascontiguousarray(Xa.T)
    Yc = Y.reshape(n_samples, 1)

    a1 = np.empty((n_samples, K), dtype=dtype)       # hidden activations
    t = np.empty((n_samples, K), dtype=dtype)        # hidden deltas
    a1_3 = a1.reshape(n_samples, hidden, L)
    t_3 = t.reshape(n_samples, hidden, L)
    z2 = np.empty((n_samples, L), dtype=dtype)
    a2 = np.empty((n_samples, L), dtype=dtype) if output == "sigmoid" else z2
    d2 = np.empty((n_samples, L), dtype=dtype)       # output deltas (times lr_output)
    dh = d2 if shared else np.empty((n_samples, L), dtype=dtype)   # output deltas times lr_hidden s2
    dh_3 = dh.reshape(n_samples, 1, L)
    u = np.empty((n_samples, L), dtype=dtype)
    mask = np.empty((n_samples, K), dtype=bool) if activation == "relu" else None
    dP1 = np.empty_like(P1)
    dW2 = np.empty((hidden, L), dtype=dtype)
    db2 = np.empty(L, dtype=dtype)
    next_rec = 0

    for epoch in range(epochs):
        # forward: a1 = f(z1), a2 = g(s2 sum_h a1 W2 + b2)
        np.matmul(Xa, P1, out=a1)
        if activation == "sigmoid":                  # a1 holds -z1: 1 / (1 + exp(-z1))
            np.exp(a1, out=a1)
            a1 += 1
            np.divide(1, a1, out=a1)
        elif activation == "tanh":
            np.tanh(a1, out=a1)
        elif activation == "relu":
            np.maximum(a1, 0, out=a1)                # NaN stays NaN
        np.einsum("nhl,hl->nl", a1_3, w2, out=z2)
        if s2 is not None:
            z2 *= s2
        if bias:
            z2 += c2
        if output == "sigmoid":
            np.negative(z2, out=a2)
            np.exp(a2, out=a2)
            a2 += 1
            np.divide(1, a2, out=a2)

        if next_rec < rec.size and rec[next_rec] == epoch:
            np.subtract(Yc, a2, out=u)
            u *= u
            np.mean(u, axis=0, out=losses[next_rec, lo:hi])
            next_rec += 1

        # backward: d2 = lr_output (a2 - y) g'(a2) r (g' = a2 (1 - a2) or 1, r = 1 or 1/N)
        np.subtract(a2, Yc, out=d2)
        if output == "sigmoid":
            np.subtract(1, a2, out=u)
            u *= a2
            d2 *= u
        if r is not None:
            d2 *= r
        if not shared:
            np.multiply(d2, lr_back, out=dh)
        d2 *= lro
        np.einsum("nhl,nl->hl", a1_3, d2, out=dW2)   # lr dW2 (over s2)
        if s2 is not None:
            dW2 *= s2
        if bias:
            np.sum(d2, axis=0, out=db2)              # lr db2
        # t = lr dZ1 = lr s2 d2 W2 f'(a1), with W2 before its update
        np.multiply(dh_3, w2, out=t_3)
        if activation == "sigmoid":
            t *= a1
            np.subtract(1, a1, out=a1)               # a1 is not needed any more
            t *= a1
        elif activation == "tanh":
            a1 *= a1
            np.subtract(1, a1, out=a1)
            t *= a1
        elif activation == "relu":
            np.greater(a1, 0, out=mask)
            t *= mask
        np.matmul(XaT, t, out=dP1)                   # lr (dW1; db1), s1 inside XaT

        # update (P1 holds the negated parameters of sigmoid units)
        w2 -= dW2
        if bias:
            c2 -= db2
        if negated:
            P1 += dP1
        else:
            P1 -= dP1

    if negated:
        np.negative(P1, out=P1)
    W1[:, :, lo:hi] = P1[:n_inputs].reshape(n_inputs, hidden, L)
    W2[:, lo:hi] = w2
    if bias:
        b1[:, lo:hi] = P1[n_inputs].reshape(hidden, L)
        b2[lo:hi] = c2


# --------------------------------------------------------------------------
# (b2) All networks at once, other optimizers and minibatches (issue 17).
# --------------------------------------------------------------------------

PEER_OPTIMIZERS = ("gd", "nesterov", "adam", "rmsprop")


def train_batched_optimizer(X, Y, W1, b1, W2, b2, lr, epochs, *, optimizer="gd", batch_size=0, momentum=0.0,
                            beta1=0.9, beta2=0.999, opt_eps=1e-8, activation="sigmoid", output="sigmoid", bias=True,
                            scaling="standard", reduction="sum", block=DEFAULT_BLOCK):
    """Train L networks at once with an optimizer, on the full batch or on minibatches; networks in the last axis.

    Arrays as in `train_batched` (X (N, D), Y (N,); W1 (D, H, L), b1 (H, L),
    W2 (H, L), b2 (L,) of one float dtype, updated in place; b1 and b2
    ignored with bias=False), and the same model family (activation,
    output, bias, scaling, reduction). `lr` is one scalar, the rate of
    every parameter. optimizer: "gd" (heavy ball with `momentum`), "nesterov",
    "adam" (beta1, beta2, opt_eps) or "rmsprop" (alpha = beta2, opt_eps), as
    in kernels.reference (no weight decay). batch_size 0: one update per
    epoch from the whole data set; k >= 1: consecutive batches of k samples
    in dataset order, the last smaller when k does not divide N, one update
    each (the mean reduction divides a batch's gradient by its size). Lanes
    are trained in slices of at most `block` (all epochs for a slice, then
    the next), on one thread. Returns (W1, b1, W2, b2).
    """
    Variant.of(activation, output, bias, scaling, reduction, optimizer, batch_size)   # the kernels' checks
    if optimizer not in PEER_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(PEER_OPTIMIZERS)}; got {optimizer!r}")
    if momentum != 0 and optimizer not in ("gd", "nesterov"):
        raise ValueError(f"momentum is an argument of 'gd' and 'nesterov', not of {optimizer!r}")
    if np.ndim(lr) != 0:
        raise ValueError("lr must be a scalar")
    for value, what in ((beta1, "beta1"), (beta2, "beta2")):
        if not 0 <= value < 1:
            raise ValueError(f"{what} must be in [0, 1); got {value!r}")
    if not opt_eps >= 0:
        raise ValueError(f"opt_eps must be >= 0; got {opt_eps!r}")
    n_inputs, hidden, n_lanes = W1.shape
    shapes = [("W2", W2, (hidden, n_lanes))]
    if bias:
        shapes += [("b1", b1, (hidden, n_lanes)), ("b2", b2, (n_lanes,))]
    if any(np.shape(p) != shape for _, p, shape in shapes):
        raise ValueError("expected W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)")
    dtype = W1.dtype
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=dtype).reshape(-1)
    if X.ndim != 2 or X.shape[1] != n_inputs or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X must be (N, {n_inputs}) and Y (N,); got {X.shape} and {Y.shape}")
    s1, s2 = layer_scales(scaling, n_inputs, hidden, dtype)
    if s1 is not None:
        X = X * s1          # s1 (X W1) as (s1 X) W1, once
    f = dtype.type
    model = dict(optimizer=optimizer, activation=activation, output=output, bias=bool(bias), s2=s2,
                 mean=reduction == "mean", lr=f(lr), mu=f(momentum), beta1=f(beta1), beta2=f(beta2), eps=f(opt_eps))
    step = max(1, int(block))
    for lo in range(0, n_lanes, step):
        _train_block_optimizer(X, Y, W1, b1, W2, b2, lo, min(n_lanes, lo + step), int(epochs), int(batch_size),
                               **model)
    return W1, b1, W2, b2


def _train_block_optimizer(X, Y, W1, b1, W2, b2, lo, hi, epochs, batch_size, *, optimizer, activation, output, bias,
                           s2, mean, lr, mu, beta1, beta2, eps):
    n_samples, n_inputs = X.shape
    hidden = W1.shape[1]
    L = hi - lo
    K = hidden * L
    dtype = W1.dtype
    one = dtype.type(1)
    neg1, neg2 = activation == "sigmoid", output == "sigmoid"   # parameters stored negated
    rows = n_inputs + 1 if bias else n_inputs
    # plain gradient descent: lr folded into the output delta, the gradients come out times lr
    fold = optimizer in ("gd", "nesterov") and mu == 0

    # Every parameter in one flat vector P (and its gradient in G, same layout): the hidden layer (W1; b1) as a
    # (rows, H*L) matrix P1, then w2 (H, L), then c2 (L,); sigmoid units' parameters negated.
    n1, n2 = rows * K, hidden * L
    size = n1 + n2 + (L if bias else 0)
    P, G = np.empty(size, dtype=dtype), np.empty(size, dtype=dtype)
    P1, dP1 = P[:n1].reshape(rows, K), G[:n1].reshape(rows, K)
    w2, dW2 = P[n1:n1 + n2].reshape(hidden, L), G[n1:n1 + n2].reshape(hidden, L)
    c2, db2 = (P[n1 + n2:], G[n1 + n2:]) if bias else (None, None)
    P1[:n_inputs] = W1[:, :, lo:hi].reshape(n_inputs, K)
    w2[...] = W2[:, lo:hi]
    if bias:
        P1[n_inputs] = b1[:, lo:hi].reshape(K)
        c2[...] = b2[lo:hi]
    if neg1:
        np.negative(P1, out=P1)
    if neg2:
        np.negative(P[n1:], out=P[n1:])
    momentum_buffer = optimizer == "adam" or (optimizer in ("gd", "nesterov") and not fold)
    v = np.zeros(size, dtype=dtype) if momentum_buffer else None     # velocity (gd, nesterov) or m (adam)
    s = np.zeros(size, dtype=dtype) if optimizer in ("adam", "rmsprop") else None
    tmp = None if fold else np.empty(size, dtype=dtype)
    den = np.empty(size, dtype=dtype) if s is not None else None
    omb1, omb2 = one - beta1, one - beta2
    beta1_t = beta2_t = one

    # The batches: inputs with a column of ones (Xa @ P1 adds b1), their transposes, targets.
    Xa = np.ones((n_samples, rows), dtype=dtype)
    Xa[:, :n_inputs] = X
    k = n_samples if batch_size == 0 else min(batch_size, n_samples)
    batches = []
    for start in range(0, n_samples, k):
        part = Xa[start:start + k]
        batches.append((part.shape[0], np.ascontiguousarray(part), np.ascontiguousarray(part.T),
                        Y[start:start + k].reshape(-1, 1).copy()))

    # Work buffers for k samples, and their views for each batch size (k, and the last batch's)
    a1 = np.empty((k, K), dtype=dtype)            # hidden activations
    t = np.empty((k, K), dtype=dtype)             # hidden deltas
    z2 = np.empty((k, L), dtype=dtype)            # (-)z2
    a2 = np.empty((k, L), dtype=dtype) if neg2 else z2
    d2 = np.empty((k, L), dtype=dtype)            # output deltas (of the stored output parameters)
    own_dh = neg1 or s2 is not None
    dh = np.empty((k, L), dtype=dtype) if own_dh else d2   # output deltas for the hidden layer
    u = np.empty((k, L), dtype=dtype)
    mask = np.empty((k, K), dtype=bool) if activation == "relu" else None
    views = {}
    for nb, *_ in batches:
        if nb not in views:
            views[nb] = (a1[:nb], a1[:nb].reshape(nb, hidden, L), t[:nb], t[:nb].reshape(nb, hidden, L), z2[:nb],
                         a2[:nb], d2[:nb], dh[:nb], dh[:nb].reshape(nb, 1, L), u[:nb],
                         None if mask is None else mask[:nb], dtype.type(nb))

    for _ in range(epochs):
        for nb, Xb, XbT, Yb in batches:
            A1, A1_3, T, T_3, Z2, A2, D2, DH, DH_3, U, M, n_b = views[nb]
            # forward: a1 = f(z1), a2 = g(s2 sum_h a1 W2 + b2)
            np.matmul(Xb, P1, out=A1)
            if activation == "sigmoid":                  # A1 holds -z1: 1 / (1 + exp(-z1))
                np.exp(A1, out=A1)
                A1 += 1
                np.divide(1, A1, out=A1)
            elif activation == "tanh":
                np.tanh(A1, out=A1)
            elif activation == "relu":
                np.maximum(A1, 0, out=A1)
            np.einsum("nhl,hl->nl", A1_3, w2, out=Z2)
            if s2 is not None:
                Z2 *= s2
            if bias:
                Z2 += c2
            if neg2:                                     # Z2 holds -z2
                np.exp(Z2, out=A2)
                A2 += 1
                np.divide(1, A2, out=A2)

            # backward: D2 = +-(a2 - y) g'(a2) (/ nb) (* lr), the sign of the stored output parameters
            if neg2:
                np.subtract(Yb, A2, out=D2)
                np.subtract(1, A2, out=U)
                U *= A2
                D2 *= U
            else:
                np.subtract(A2, Yb, out=D2)
            if mean:
                D2 /= n_b
            if fold:
                D2 *= lr
            np.einsum("nhl,nl->hl", A1_3, D2, out=dW2)
            if s2 is not None:
                dW2 *= s2
            if bias:
                np.sum(D2, axis=0, out=db2)
            # DH W2 (stored) f'(a1) = dZ1 of the stored hidden parameters: DH = -+D2 s2
            if neg1:
                np.negative(D2, out=DH)
                if s2 is not None:
                    DH *= s2
            elif s2 is not None:
                np.multiply(D2, s2, out=DH)
            np.multiply(DH_3, w2, out=T_3)               # with w2 before its update
            if activation == "sigmoid":
                T *= A1
                np.subtract(1, A1, out=A1)               # A1 is not needed any more
                T *= A1
            elif activation == "tanh":
                A1 *= A1
                np.subtract(1, A1, out=A1)
                T *= A1
            elif activation == "relu":
                np.greater(A1, 0, out=M)
                T *= M
            np.matmul(XbT, T, out=dP1)

            # update: kernels.reference's operations, in its order, over the flat vector
            if fold:
                P -= G
            elif optimizer in ("gd", "nesterov"):
                v *= mu
                v += G
                if optimizer == "nesterov":
                    np.multiply(v, mu, out=tmp)
                    tmp += G
                    tmp *= lr
                else:
                    np.multiply(v, lr, out=tmp)
                P -= tmp
            elif optimizer == "adam":
                beta1_t = beta1_t * beta1
                beta2_t = beta2_t * beta2
                k1 = lr / (one - beta1_t)
                c2t = np.sqrt(one - beta2_t)
                v *= beta1
                np.multiply(G, omb1, out=tmp)
                v += tmp
                s *= beta2
                np.multiply(G, omb2, out=tmp)
                tmp *= G
                s += tmp
                np.sqrt(s, out=den)
                den /= c2t
                den += eps
                np.multiply(v, k1, out=tmp)
                tmp /= den
                P -= tmp
            else:  # rmsprop
                s *= beta2
                np.multiply(G, omb2, out=tmp)
                tmp *= G
                s += tmp
                np.sqrt(s, out=den)
                den += eps
                np.multiply(G, lr, out=tmp)
                tmp /= den
                P -= tmp

    if neg1:
        np.negative(P1, out=P1)
    if neg2:
        np.negative(P[n1:], out=P[n1:])
    W1[:, :, lo:hi] = P1[:n_inputs].reshape(n_inputs, hidden, L)
    W2[:, lo:hi] = w2
    if bias:
        b1[:, lo:hi] = P1[n_inputs].reshape(hidden, L)
        b2[lo:hi] = c2


def batched_mse(X, Y, W1, b1, W2, b2, *, activation="sigmoid", output="sigmoid", bias=True, scaling="standard"):
    """mean((y - a2)^2) of each lane's network (kernel layout), computed in float64 (scales too)."""
    _check_family(activation, output, bias, scaling, "sum")
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(-1, 1)
    W1, W2 = np.asarray(W1, dtype=np.float64), np.asarray(W2, dtype=np.float64)
    s1, s2 = layer_scales(scaling, W1.shape[0], W1.shape[1], np.dtype(np.float64))
    z1 = np.einsum("nd,dhl->nhl", X, W1)
    if s1 is not None:
        z1 *= s1
    if bias:
        z1 += np.asarray(b1, dtype=np.float64)
    if activation == "sigmoid":
        a1 = 1 / (1 + np.exp(-z1))
    elif activation == "tanh":
        a1 = np.tanh(z1)
    elif activation == "relu":
        a1 = np.maximum(z1, 0)
    else:
        a1 = z1
    z2 = np.einsum("nhl,hl->nl", a1, W2)
    if s2 is not None:
        z2 *= s2
    if bias:
        z2 += np.asarray(b2, dtype=np.float64)
    a2 = 1 / (1 + np.exp(-z2)) if output == "sigmoid" else z2
    return np.mean((Y - a2) ** 2, axis=0)


# --------------------------------------------------------------------------
# (c) JAX: jit(vmap(train one network)), lax.scan over the epochs.
# --------------------------------------------------------------------------

_JAX_COMPILED = {}


def _jax():
    """Import jax on first use, with float64 enabled.

    `jax_enable_x64` must be set before JAX makes its first array, else every
    float64 input is silently cut to float32. It is a process-wide setting:
    float32 inputs stay float32 (the peer gives every array an explicit
    dtype), but other JAX code in the same process sees it too."""
    import jax
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    return jax


def jax_version():
    """(jax version, jaxlib version), or None when jax is not installed."""
    try:
        import jax
        import jaxlib
    except ImportError:
        return None
    return jax.__version__, jaxlib.__version__


def _jax_train_fn(epochs, form):
    """jit(vmap(train_one)) for `epochs` epochs; arguments and results in the kernels' layout (networks last)."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax

    def sigmoid(z):
        return 1 / (1 + jnp.exp(-z))

    def forward(X, W1, b1, W2, b2):
        if form == "matmul":
            a1 = sigmoid(X @ W1 + b1)
            return a1, sigmoid(a1 @ W2 + b2)
        # "sums": the two products as sums of broadcast products over the (static, small) D and H,
        # which XLA fuses with the sigmoids (faster than the matmuls for 2-4-1, see train_jax)
        a1 = sigmoid(b1 + sum(X[:, d:d + 1] * W1[d] for d in range(W1.shape[0])))
        return a1, sigmoid(b2 + sum(a1[:, h] * W2[h] for h in range(W1.shape[1])))

    def train_one(X, y, W1, b1, W2, b2, lr):
        # X (N, D), y (N,), W1 (D, H), b1 (H,), W2 (H,), b2 (): one network
        def epoch(params, _):
            W1, b1, W2, b2 = params
            a1, a2 = forward(X, W1, b1, W2, b2)          # (N, H), (N,)
            d2 = (a2 - y) * a2 * (1 - a2)                # dL/dz2 summed over samples: no 1/N, no factor 2
            d1 = d2[:, None] * W2 * a1 * (1 - a1)        # (N, H), with W2 before its update
            return (W1 - lr * (X.T @ d1), b1 - lr * d1.sum(0),
                    W2 - lr * (a1.T @ d2), b2 - lr * d2.sum()), None

        (W1, b1, W2, b2), _ = lax.scan(epoch, (W1, b1, W2, b2), None, length=epochs)
        a2 = forward(X, W1, b1, W2, b2)[1]
        return W1, b1, W2, b2, jnp.mean((y - a2) ** 2)

    one_per_row = jax.vmap(train_one, in_axes=(None, None, 0, 0, 0, 0, None))

    def train_all(X, Y, W1, b1, W2, b2, lr):
        # networks first inside (faster here than vmapping over the last axis), the kernels' layout outside
        W1, b1, W2, b2, loss = one_per_row(X, Y, jnp.moveaxis(W1, -1, 0), b1.T, W2.T, b2, lr)
        return jnp.moveaxis(W1, 0, -1), b1.T, W2.T, b2, loss

    return jax.jit(train_all)


JAX_FORMS = ("sums", "matmul")


def compile_jax(n_samples, n_inputs, hidden, networks, epochs, dtype=np.float64, form="sums"):
    """The compiled JAX trainer of that shape, dtype, epoch count and `form` (compiled ahead of time on
    first request, then cached): a callable (X, Y, W1, b1, W2, b2, lr) of JAX or NumPy arrays. Benchmarks
    call this first so that compilation stays out of the timed calls."""
    if form not in JAX_FORMS:
        raise ValueError(f"form must be one of {', '.join(JAX_FORMS)}; got {form!r}")
    dtype = np.dtype(dtype)
    key = (n_samples, n_inputs, hidden, networks, int(epochs), dtype.name, form)
    if key not in _JAX_COMPILED:
        jax = _jax()
        spec = [jax.ShapeDtypeStruct(shape, dtype) for shape in (
            (n_samples, n_inputs), (n_samples,), (n_inputs, hidden, networks), (hidden, networks),
            (hidden, networks), (networks,), ())]
        _JAX_COMPILED[key] = _jax_train_fn(int(epochs), form).lower(*spec).compile()
    return _JAX_COMPILED[key]


def train_jax(X, Y, W1, b1, W2, b2, epochs, lr, dtype=np.float64, form="sums"):
    """Train L sigmoid D-H-1 networks with JAX: full-batch gradient descent on the MSE loss, `epochs`
    epochs, learning rate `lr`, in `dtype` (float64 or float32).

    X (N, D), Y (N,) shared by all networks; W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,) as in
    `train_batched` (the kernels' layout), converted to `dtype`, not changed (JAX is functional).
    Returns (W1, b1, W2, b2, final_loss) as NumPy arrays of `dtype`: the weights after `epochs` updates
    and mean((y - a)^2) of those weights, per network; nothing else is recorded. The conventions are the
    module's: dL/dz2 = (a - y) a (1 - a) summed over samples, W -= lr dW.

    One network's training is `lax.scan` over the epochs, `jax.vmap` maps it over the networks and
    `jax.jit` compiles the whole: the first call with a new shape, dtype or epoch count compiles (seconds;
    `compile_jax`), later calls reuse it. float64 needs `jax_enable_x64`, which the peer switches on
    (process-wide) on first use. XLA's CPU backend runs on as many threads as the process has CPUs
    (taskset limits them; with jax 0.10.2 the XLA_FLAGS thread settings did not).

    `form` is how the forward pass is written: "sums" (the default, the fastest found for 2-4-1: the
    products X W1 and a1 W2 as sums of broadcast products over the D inputs and H hidden units, unrolled
    at trace time, so meant for small D and H) or "matmul" (X @ W1, a1 @ W2, what one writes first;
    slower for 2-4-1 XOR on the 2-core machine: docs/performance.md, "JAX as the peer"). The backward
    pass uses matmuls in both (written as sums it was slower). Same arithmetic, roundings in a
    different order. Inside, the networks are the leading axis (vmap over axis 0 after one transpose):
    faster here than vmapping over the last axis.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32; got {dtype}")
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=dtype).reshape(-1)
    params = [np.asarray(p, dtype=dtype) for p in (W1, b1, W2, b2)]
    n_inputs, hidden, networks = params[0].shape
    if (params[1].shape != (hidden, networks) or params[2].shape != (hidden, networks)
            or params[3].shape != (networks,) or X.shape != (Y.size, n_inputs)):
        raise ValueError("expected X (N, D), Y (N,), W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)")
    run = compile_jax(X.shape[0], n_inputs, hidden, networks, epochs, dtype, form)
    out = run(X, Y, *params, np.asarray(lr, dtype=dtype))
    return tuple(np.asarray(o) for o in out)       # waits for the result

"""Plain NumPy training of one network, written the way the seed notebooks
write it. No tricks: this is the ground truth the Numba kernels are tested
against, and it is tested against the notebooks' printed numbers and against
central finite differences.

The model family (names in `kernels.vocab`; the defaults are the notebooks'):

    z1 = s1 * (X @ W1) + b1      a1 = f(z1)      f = activation (hidden units)
    z2 = s2 * (a1 @ W2) + b2     a2 = g(z2)      g = output: sigmoid or identity

* activation f: sigmoid 1 / (1 + exp(-z)), tanh, relu max(z, 0) (NaN stays
  NaN), identity z; its derivative is taken from the activation a: a(1 - a),
  1 - a^2, 1 where a > 0 else 0, and 1;
* scaling (s1, s2): "standard" (1, 1), "ntk" (1/sqrt(D), 1/sqrt(H)),
  "mean-field" (1/sqrt(D), 1/H), computed in float64 and rounded to the
  working precision; the standard scaling multiplies by nothing at all, so
  its arithmetic is the notebooks' to the bit;
* bias: with bias=False there is no b1, b2 (no term, no gradient, no update).

Loss and output delta dZ2 (the notebooks' convention: dL/dz2 summed over
samples, no 1/N, no factor 2):

* MSE: loss mean((y - a)^2); delta (a - y) a(1 - a) with a sigmoid output,
  (a - y) with an identity output;
* BCE (sigmoid output only): loss -mean(y log(a + eps) + (1 - y) log(1 - a + eps));
  delta (-(y / (a + eps)) + (1 - y) / (1 - a + eps)) a(1 - a);
* so with reduction "sum" the gradient is N/2 times the gradient of the
  reported loss for MSE (either output) and N times for BCE; reduction "mean"
  divides the output delta by N (once, before backpropagation, so every
  gradient, biases included, is divided by N): 1/2 and 1 times. The reported
  losses are the same for both reductions.

Backpropagation:

    dW2 = s2 * (a1.T @ dZ2)      db2 = sum over samples of dZ2
    dA1 = s2 * (dZ2 @ W2.T)      dZ1 = dA1 * f'(a1)
    dW1 = s1 * (X.T @ dZ1)       db1 = sum over samples of dZ1

Updates: the forms of PyTorch's torch.optim (SGD with dampening 0, Adam,
AdamW, RMSprop not centered and without momentum), applied to each parameter
p with its layer's rate lr (lr_hidden for W1 and b1, lr_output for W2 and b2;
both lr unless given) and the gradient g above (reduction included) of the
update's samples. With weight decay wd != 0 a decaying parameter (W1 and W2;
b1 and b2 only with decay_biases) has g' = g + wd p, every other g' = g.
Buffers v, m, s start at 0; t = 1, 2, ... counts the run's updates.

* gd (heavy ball): mu = momentum != 0: v = mu v + g', p -= lr v; mu = 0:
  p -= lr g'. With wd = 0 this is the notebooks' arithmetic to the bit;
* nesterov: mu != 0: v = mu v + g', p -= lr (g' + mu v); mu = 0: as gd;
* adam: m = beta1 m + (1 - beta1) g', s = beta2 s + (1 - beta2) g'^2,
  p -= lr / (1 - beta1^t) * m / (sqrt(s) / sqrt(1 - beta2^t) + eps);
* adamw: a decaying parameter first shrinks, p *= 1 - lr wd; then adam's
  step with g (no wd term in the gradient);
* rmsprop (alpha = beta2): s = beta2 s + (1 - beta2) g'^2,
  p -= lr g' / (sqrt(s) + eps).

Each operation below is one IEEE operation rounded to the working precision
(the hyperparameters, eps = opt_eps among them, are rounded to it first), in
this order, which the kernels copy. beta1^t and beta2^t are running products,
beta1_t = beta1_t * beta1 and beta2_t = beta2_t * beta2 (from 1, once per
update, before the parameters move), not pow, whose rounding differs between
libraries:

    g' = g + (wd * p)
    gd:       v = (mu * v) + g';  p = p - (lr * v)       (mu = 0: p = p - (lr * g'))
    nesterov: v = (mu * v) + g';  p = p - (lr * (g' + (mu * v)))
    adam:     m = (beta1 * m) + ((1 - beta1) * g')
              s = (beta2 * s) + (((1 - beta2) * g') * g')
              p = p - (((lr / (1 - beta1_t)) * m) / ((sqrt(s) / sqrt(1 - beta2_t)) + eps))
    adamw:    p = p * (1 - (lr * wd)), then adam with g' = g
    rmsprop:  s = (beta2 * s) + (((1 - beta2) * g') * g')
              p = p - ((lr * g') / (sqrt(s) + eps))

Minibatches: batch_size 0 makes one update per epoch from the whole data
set; k >= 1 cuts the samples, in dataset order or (shuffle) in the epoch's
`shuffled_order`, into consecutive batches of k (the last smaller when k does
not divide N) and makes one update per batch: forward on the batch, its
gradient (reduction "mean" divides by the batch's size), the step. An epoch
is one pass over the data.

Shuffle rule: the order of epoch e (the pass from state e to e + 1) of a run
with seed s over N samples is a Fisher-Yates shuffle driven by splitmix64,
all in unsigned 64-bit integers (mod 2^64; seeds and epochs are below 2^32):

    x = (s << 32) | e
    next():  x = x + 0x9E3779B97F4A7C15
             z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
             z = (z ^ (z >> 27)) * 0x94D049BB133111EB
             return z ^ (z >> 31)
    order = [0, 1, ..., N - 1]
    for i = N - 1 down to 1:  j = next() % (i + 1);  swap order[i], order[j]

"State e" is the network after e epochs (e updates with full batches). Every
state 0..epochs is evaluated on the whole data set (forward pass, loss,
criterion); the full-data gradient of the last evaluated state is computed
but not applied and gives `grad_norm`. Statistics:

* epoch_converged: first state at which the criterion holds, else -1;
  criterion "margin": every output strictly within `margin` of its target;
  criterion "loss": loss <= tol;
* with early_stop the run ends at that state; a state whose loss is not
  finite ends the run as diverged (non-finite weights or gradients reach the
  loss one state later at the latest);
* epochs_run: epochs run (epochs, or fewer when stopped);
* accuracy: share of samples with (a2 > 0.5) == (y > 0.5); NaN unless every
  target is exactly 0 or 1;
* sat_hidden_*: share of hidden pre-activations z1 (all samples and units)
  with |z1| > SATURATION_Z of the activation (sigmoid 4, tanh 2); 0 for
  identity units, NaN for ReLU units (they die instead);
* sat_output_*: share of output pre-activations with |z2| > 4 for a sigmoid
  output, 0 for an identity output;
* dead_hidden_*: ReLU only (NaN otherwise): share of hidden units h with
  z1[n, h] <= 0 on every sample n;
* grad_norm: Euclidean norm of the full-data gradient (scaling and
  reduction included; biases only when there are biases), before weight
  decay, lr and the optimizer;
* *_start: at state 0; final_* / outputs / accuracy / *_end / grad_norm: at
  the last state;
* checkpoint_loss: loss at the given states, NaN for states not reached;
* losses: the loss of every state reached, and from them `trainability_scores`:
  loss_ratio_sum, loss_ratio_tail, trainability, epoch_diverged (defined in
  kernels/trainability.py's docstring).
"""
import numpy as np

from kernels.vocab import (ACTIVATIONS, LOSSES, OPTIMIZERS, OUTPUTS, RATIO_CAP, REDUCTIONS, SATURATION_Z, SCALINGS,
                           SIGMOID, TAIL_STATES)

OUTPUT_SATURATION_Z = SATURATION_Z[SIGMOID]

MASK64 = 2**64 - 1


# --- activations -------------------------------------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(a):
    # assumes 'a' is already sigmoid(z)
    return a * (1 - a)


def activate(z, activation):
    """f(z) for an activation name of kernels.vocab.ACTIVATIONS (or OUTPUTS)."""
    if activation == "sigmoid":
        return sigmoid(z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.maximum(z, 0)  # np.maximum propagates NaN
    if activation == "identity":
        return z
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def activation_derivative(a, activation):
    """f'(z), computed from the activation a = f(z)."""
    if activation == "sigmoid":
        return sigmoid_derivative(a)
    if activation == "tanh":
        return 1 - a ** 2
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    if activation == "identity":
        return np.ones_like(a)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


# --- scaling and bias ----------------------------------------------------------

def layer_scales(scaling, D, H, dtype):
    """(s1, s2), the factors on X @ W1 and a1 @ W2, rounded to the working precision."""
    if scaling == "standard":
        s1, s2 = 1.0, 1.0
    elif scaling == "ntk":
        s1, s2 = 1 / np.sqrt(D), 1 / np.sqrt(H)
    elif scaling == "mean-field":
        s1, s2 = 1 / np.sqrt(D), 1 / H
    else:
        raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")
    return dtype.type(s1), dtype.type(s2)


def scaled(s, x):
    """s * x; a factor of 1 (the standard scaling) is no multiply at all."""
    return x if s == 1 else s * x


def plus_bias(z, b):
    """z + b, or z itself when the network has no biases (b is None)."""
    return z if b is None else z + b


# --- loss ----------------------------------------------------------------------

def loss_value(a, y, loss, bce_eps):
    """The notebooks' loss of outputs `a` against targets `y` (same shapes)."""
    if loss == "mse":
        return np.mean((y - a) ** 2)
    return -np.mean(y * np.log(a + bce_eps) + (1 - y) * np.log(1 - a + bce_eps))


def check_loss_and_output(loss, output):
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; expected one of {OUTPUTS}")
    if loss == "bce" and output != "sigmoid":
        raise ValueError("loss 'bce' needs a sigmoid output (its outputs must lie in (0, 1))")


def output_delta(a2, y, loss, bce_eps, output):
    """dZ2: dL/dz2 of the notebooks' convention, per sample (summed later, no 1/N)."""
    check_loss_and_output(loss, output)
    if loss == "mse":
        dA2 = a2 - y
    else:
        dA2 = -(y / (a2 + bce_eps)) + ((1 - y) / (1 - a2 + bce_eps))
    if output == "identity":
        return dA2
    return dA2 * sigmoid_derivative(a2)


def reduce(dZ2, reduction):
    """The 'mean' reduction divides the output delta by N (so every gradient is /N)."""
    if reduction == "sum":
        return dZ2
    if reduction == "mean":
        return dZ2 / dZ2.shape[0]
    raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")


# --- the network -----------------------------------------------------------------

def forward(X, W1, b1, W2, b2, activation="sigmoid", output="sigmoid", scaling="standard"):
    """Row layout of notebooks 000/002: X (N, D), W1 (D, H), W2 (H, 1); b1 (1, H)
    and b2 (1, 1), or both None for a network without biases."""
    s1, s2 = layer_scales(scaling, *W1.shape, W1.dtype)
    z1 = plus_bias(scaled(s1, X @ W1), b1)
    a1 = activate(z1, activation)
    z2 = plus_bias(scaled(s2, a1 @ W2), b2)
    a2 = activate(z2, output)
    return z1, a1, z2, a2


def gradients(X, y, a1, a2, W2, loss, bce_eps, activation="sigmoid", output="sigmoid",
              scaling="standard", reduction="sum", bias=True):
    """Backpropagation of the notebooks' (summed over samples) loss gradient.

    Returns (dW1, db1, dW2, db2); db1 and db2 are None when bias is False.
    """
    s1, s2 = layer_scales(scaling, X.shape[1], W2.shape[0], W2.dtype)
    dZ2 = reduce(output_delta(a2, y, loss, bce_eps, output), reduction)
    dW2 = scaled(s2, a1.T @ dZ2)
    db2 = np.sum(dZ2, axis=0, keepdims=True) if bias else None
    dA1 = scaled(s2, dZ2 @ W2.T)
    dZ1 = dA1 * activation_derivative(a1, activation)
    dW1 = scaled(s1, X.T @ dZ1)
    db1 = np.sum(dZ1, axis=0, keepdims=True) if bias else None
    return dW1, db1, dW2, db2


# --- statistics ----------------------------------------------------------------

def criterion_holds(a2, y, loss_now, criterion, margin, tol):
    if criterion == "margin":
        return bool(np.all(np.abs(a2 - y) < margin))
    return bool(loss_now <= tol)


def saturated_hidden(z1, activation):
    """Share of hidden pre-activations beyond the activation's saturation |z|."""
    if activation == "relu":
        return np.nan
    if activation == "identity":
        return 0.0
    return float(np.mean(np.abs(z1) > SATURATION_Z[ACTIVATIONS.index(activation)]))


def saturated_output(z2, output):
    """Share of output pre-activations with |z2| > 4 (sigmoid output), else 0."""
    if output == "identity":
        return 0.0
    return float(np.mean(np.abs(z2) > OUTPUT_SATURATION_Z))


def dead_hidden(z1, activation):
    """ReLU only: share of hidden units with z1 <= 0 on every sample."""
    if activation != "relu":
        return np.nan
    return float(np.mean(np.all(z1 <= 0, axis=0)))


def accuracy(a2, y):
    """Share of outputs on the right side of 0.5; NaN unless the targets are all 0 or 1."""
    if not np.all((y == 0) | (y == 1)):
        return np.nan
    return float(np.mean((a2 > 0.5) == (y > 0.5)))


def gradient_norm(grads):
    """Euclidean norm of the gradients that exist (no biases: None), in float64."""
    return float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads if g is not None)))


def layer_rates(lr, lr_hidden, lr_output):
    """(lr of W1 and b1, lr of W2 and b2): each defaults to lr."""
    lr_hidden = lr if lr_hidden is None else lr_hidden
    lr_output = lr if lr_output is None else lr_output
    if lr_hidden is None or lr_output is None:
        raise ValueError("give lr, or both lr_hidden and lr_output")
    return lr_hidden, lr_output


def trainability_scores(losses, epochs):
    """loss_ratio_sum, loss_ratio_tail, trainability and epoch_diverged of a run, from the losses of the
    states 0..e it reached (e <= epochs; the states after e hold the last ratio)."""
    losses = np.asarray(losses, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = losses / losses[0]
    beyond = ~(ratios <= RATIO_CAP)
    epoch_diverged = int(np.flatnonzero(beyond)[0]) if beyond.any() else -1
    ratios = np.where(beyond, RATIO_CAP, ratios)
    ratios = np.concatenate([ratios, np.full(epochs + 1 - ratios.size, ratios[-1])])
    # cumsum adds in order, as the kernels do (np.sum would add pairwise).
    ratio_sum = np.cumsum(ratios)[-1]
    tail = np.cumsum(ratios[max(0, epochs + 1 - TAIL_STATES):])[-1] / min(TAIL_STATES, epochs + 1)
    with np.errstate(divide="ignore"):
        reciprocal_sum = np.cumsum(1.0 / ratios)[-1]
    return {"loss_ratio_sum": float(ratio_sum), "loss_ratio_tail": float(tail),
            "trainability": float(-ratio_sum if tail < 1 else reciprocal_sum), "epoch_diverged": epoch_diverged}


def check_family(activation, output, scaling, reduction, loss):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    check_loss_and_output(loss, output)


# --- optimizers and update order -------------------------------------------------

class Optimizer:
    """One run's optimizer: its hyperparameters (working precision) and buffers; `step` updates the
    parameters in place, in the order of operations of the module docstring."""

    def __init__(self, name, params, rates, decays, dtype, momentum=0.0, beta1=0.9, beta2=0.999,
                 opt_eps=1e-8, weight_decay=0.0):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
        self.name, self.params, self.rates, self.decays = name, params, rates, decays
        self.momentum, self.beta1, self.beta2 = dtype.type(momentum), dtype.type(beta1), dtype.type(beta2)
        self.eps, self.weight_decay = dtype.type(opt_eps), dtype.type(weight_decay)
        self.v = [np.zeros_like(p) for p in params]  # velocity (gd, nesterov) or first moment m (adam)
        self.s = [np.zeros_like(p) for p in params]  # second moment (adam, adamw, rmsprop)
        self.beta1_t = self.beta2_t = dtype.type(1)  # beta1^t and beta2^t

    def step(self, grads):
        """One update of every parameter from its gradient (None entries, absent biases, are skipped)."""
        grads = [g for g in grads if g is not None]
        mu, beta1, beta2, eps, wd = self.momentum, self.beta1, self.beta2, self.eps, self.weight_decay
        if self.name in ("adam", "adamw"):
            self.beta1_t = self.beta1_t * beta1
            self.beta2_t = self.beta2_t * beta2
        for p, g, v, s, rate, decays in zip(self.params, grads, self.v, self.s, self.rates, self.decays):
            if wd and decays:
                if self.name == "adamw":
                    p *= 1 - rate * wd
                else:
                    g = g + wd * p
            if self.name in ("gd", "nesterov"):
                if mu:
                    v *= mu
                    v += g
                    if self.name == "nesterov":
                        p -= rate * (g + mu * v)
                    else:
                        p -= rate * v
                else:
                    p -= rate * g
            elif self.name in ("adam", "adamw"):
                v[...] = beta1 * v + (1 - beta1) * g
                s[...] = beta2 * s + (1 - beta2) * g * g
                p -= rate / (1 - self.beta1_t) * v / (np.sqrt(s) / np.sqrt(1 - self.beta2_t) + eps)
            else:  # rmsprop
                s[...] = beta2 * s + (1 - beta2) * g * g
                p -= rate * g / (np.sqrt(s) + eps)


def splitmix64(x):
    """One step of splitmix64 from state x: (next state, output), Python ints mod 2^64."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return x, z ^ (z >> 31)


def shuffled_order(seed, epoch, n):
    """The sample order of epoch `epoch` of a run with seed `seed` over n samples (the shuffle rule of
    the module docstring): a permutation of 0..n-1 that depends on nothing else."""
    x = ((seed << 32) | epoch) & MASK64
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        x, out = splitmix64(x)
        j = out % (i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


# --- training ------------------------------------------------------------------

def train_reference(X, Y, W1, b1, W2, b2, epochs, *, lr=None, loss="mse", bce_eps=1e-8,
                    momentum=0.0, criterion="margin", margin=0.4, tol=0.01,
                    early_stop=False, checkpoints=(), activation="sigmoid", output="sigmoid",
                    lr_hidden=None, lr_output=None, bias=True, scaling="standard",
                    reduction="sum", optimizer="gd", beta1=0.9, beta2=0.999, opt_eps=1e-8,
                    weight_decay=0.0, decay_biases=False, batch_size=0, shuffle=False, shuffle_seed=0,
                    diagnostics=False):
    """Train one D-H-1 network; returns a dict of statistics and final weights.

    Shapes: X (N, D), Y (N,), W1 (D, H), b1 (H,), W2 (H,), b2 scalar; with
    bias=False, b1 and b2 are ignored (None is fine) and come back as None.
    The arrays are copied, never changed. The dtype of W1 is the working
    precision. optimizer, beta1, beta2 (RMSprop's alpha), opt_eps,
    weight_decay, decay_biases, batch_size and shuffle (with shuffle_seed,
    the run's seed) as in the module docstring; the hyperparameters an
    optimizer does not use are ignored. diagnostics: also the curvature of
    every state (`_diagnostics`; slow: a Hessian by finite differences each).
    """
    check_family(activation, output, scaling, reduction, loss)
    if batch_size < 0:
        raise ValueError(f"batch_size must be 0 (full batch) or a positive size, not {batch_size}")
    lr_hidden, lr_output = layer_rates(lr, lr_hidden, lr_output)
    family = dict(activation=activation, output=output, scaling=scaling)
    dtype = np.asarray(W1).dtype
    X = np.asarray(X, dtype=dtype)
    y = np.asarray(Y, dtype=dtype).reshape(-1, 1)
    W1 = np.array(W1, dtype=dtype)
    W2 = np.array(W2, dtype=dtype).reshape(-1, 1)
    if bias:
        b1 = np.array(b1, dtype=dtype).reshape(1, -1)
        b2 = np.array(b2, dtype=dtype).reshape(1, 1)
        params = (W1, b1, W2, b2)
    else:
        b1 = b2 = None
        params = (W1, W2)
    lr_hidden, lr_output = dtype.type(lr_hidden), dtype.type(lr_output)
    rates = (lr_hidden, lr_hidden, lr_output, lr_output) if bias else (lr_hidden, lr_output)
    decays = (True, decay_biases, True, decay_biases) if bias else (True, True)
    opt = Optimizer(optimizer, params, rates, decays, dtype, momentum=momentum, beta1=beta1, beta2=beta2,
                    opt_eps=opt_eps, weight_decay=weight_decay)
    bce_eps = dtype.type(bce_eps)
    checkpoints = [int(c) for c in checkpoints]
    n = X.shape[0]

    checkpoint_loss = np.full(len(checkpoints), np.nan)
    losses = []
    epoch_converged = -1
    min_loss = np.inf
    diverged = False
    states = []  # the parameters of every state, for the diagnostics
    if diagnostics:
        from kernels.curvature import parameters
    for e in range(epochs + 1):
        if diagnostics:
            states.append(parameters(W1, b1, W2, b2, bias))
        z1, a1, z2, a2 = forward(X, W1, b1, W2, b2, **family)
        loss_now = loss_value(a2, y, loss, bce_eps)
        losses.append(loss_now)
        for k, c in enumerate(checkpoints):
            if c == e:
                checkpoint_loss[k] = loss_now
        holds = criterion_holds(a2, y, loss_now, criterion, margin, tol)
        if e == 0:
            sat_hidden_start = saturated_hidden(z1, activation)
            sat_output_start = saturated_output(z2, output)
            dead_hidden_start = dead_hidden(z1, activation)
        if loss_now < min_loss:
            min_loss = loss_now
        if holds and epoch_converged < 0:
            epoch_converged = e
        grads = gradients(X, y, a1, a2, W2, loss, bce_eps, **family, reduction=reduction, bias=bias)
        if not np.isfinite(loss_now):
            diverged = True
            break
        if e == epochs or (early_stop and holds):
            break
        if batch_size == 0:
            opt.step(grads)  # the full batch: the gradient of state e, from its forward pass above
        else:
            order = shuffled_order(shuffle_seed, e, n) if shuffle else np.arange(n)
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                Xb, yb = X[rows], y[rows]
                _, a1b, _, a2b = forward(Xb, W1, b1, W2, b2, **family)
                opt.step(gradients(Xb, yb, a1b, a2b, W2, loss, bce_eps, **family, reduction=reduction, bias=bias))

    extra = {}
    if diagnostics:
        extra = _diagnostics(X, y, W1.shape[1], states, losses, holds and not diverged, checkpoints, loss=loss,
                             bce_eps=bce_eps,
                             **family, reduction=reduction, bias=bias, optimizer=optimizer, momentum=momentum,
                             weight_decay=weight_decay, decay_biases=decay_biases, batch_size=batch_size,
                             lr_hidden=lr_hidden, lr_output=lr_output)
    return {
        **extra,
        "epoch_converged": epoch_converged,
        "converged": holds and not diverged,
        "epochs_run": e,
        "final_loss": float(loss_now),
        "min_loss": float(min_loss),
        "final_mse": float(np.mean((y - a2) ** 2)),
        "accuracy": accuracy(a2, y),
        "outputs": a2[:, 0].copy(),
        "sat_hidden_start": sat_hidden_start,
        "sat_output_start": sat_output_start,
        "sat_hidden_end": saturated_hidden(z1, activation),
        "sat_output_end": saturated_output(z2, output),
        "dead_hidden_start": dead_hidden_start,
        "dead_hidden_end": dead_hidden(z1, activation),
        "grad_norm": gradient_norm(grads),
        "diverged": diverged,
        "checkpoint_loss": checkpoint_loss,
        "losses": np.array(losses, dtype=np.float64),
        **trainability_scores(losses, epochs),
        "W1": W1, "b1": b1[0] if bias else None, "W2": W2[:, 0], "b2": b2[0, 0] if bias else None,
    }


def _diagnostics(X, y, hidden, states, losses, converged, checkpoints, *, loss, bce_eps, activation, output, scaling,
                 reduction, bias, optimizer, momentum, weight_decay, decay_biases, batch_size, lr_hidden, lr_output):
    """The curvature and dynamics of a run from the parameters of its states (kernels/curvature.py defines
    them): sharpness_init, sharpness_final, sharpness_max and epoch_sharpness_max, checkpoint_sharpness (NaN
    for states not reached), steps_above_edge (the states that made an update with `edge_sharpness` above
    `edge_threshold`; None for adaptive optimizers and minibatches, which have no such threshold),
    ntk_lambda0 and lr_lambda0 at state 0, loss_peak_ratio and catapult."""
    from kernels import curvature as cv

    n_inputs = X.shape[1]
    objective = cv.Objective(X, y, n_inputs, hidden, loss=loss, bce_eps=bce_eps, activation=activation,
                             output=output, scaling=scaling, reduction=reduction, bias=bias,
                             l2=0.0 if optimizer == "adamw" else weight_decay, decay_biases=decay_biases)
    rates = cv.layer_rates(n_inputs, hidden, bias, lr_hidden, lr_output)
    sharp = np.array([cv.sharpness(objective, theta) for theta in states])
    threshold = cv.edge_threshold(optimizer, momentum) if batch_size == 0 else None
    above = None
    if threshold is not None:
        above = sum(cv.edge_sharpness(objective, theta, rates) > threshold for theta in states[:-1])
    finite = np.where(np.isfinite(sharp), sharp, -np.inf)
    K = cv.ntk(objective, states[0])
    return {
        "sharpness": sharp,
        "sharpness_init": float(sharp[0]),
        "sharpness_final": float(sharp[-1]),
        "sharpness_max": float(np.max(finite)) if np.isfinite(finite).any() else np.nan,
        "epoch_sharpness_max": int(np.argmax(finite)) if np.isfinite(finite).any() else -1,
        "checkpoint_sharpness": np.array([sharp[c] if c < sharp.size else np.nan for c in checkpoints]),
        "steps_above_edge": above,
        "ntk_lambda0": cv.largest_eigenvalue(K),
        "lr_lambda0": cv.largest_eigenvalue(cv.ntk(objective, states[0], rates)),
        **cv.dynamics(losses, converged),
    }

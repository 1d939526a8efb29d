"""`train`: the public entry point that trains a batch of networks in lanes.

It validates and converts the arguments (`prepare`, shared with the GPU entry
point `kernels.cuda.train_cuda`), runs the Numba kernel
(`kernels.kernel.train_range`) over blocks of lanes in threads (the kernel
releases the GIL), and returns a `TrainResult` of per-lane arrays.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kernels import kernel as _k
from kernels.vocab import (ACTIVATIONS, A_WD, BCE, BOOL_STATS, CRITERIA, DIAG_ROWS, FLOAT_STATS, F_ACCURACY,
                           F_DEAD_HIDDEN_END, F_DEAD_HIDDEN_START, F_SAT_HIDDEN_END, F_SAT_HIDDEN_START, GD,
                           IDENTITY, INT_STATS, LOSSES, MAX_HIDDEN, MAX_INPUTS, MAX_SAMPLES, N_DIAG_ROWS,
                           N_FLOAT_STATS, N_INT_STATS, OPTIMIZERS, OUTPUTS, REDUCTIONS, RELU, SCALINGS, TILE_LANES)


@dataclass
class TrainResult:
    """Per-lane statistics; arrays have the lane axis last.

    See `kernels.reference` for the definition of each statistic.
    """

    epoch_converged: np.ndarray  # (L,) int64, -1 if never
    converged: np.ndarray  # (L,) bool, criterion holds at the last state
    epochs_run: np.ndarray  # (L,) int64
    diverged: np.ndarray  # (L,) bool
    final_loss: np.ndarray  # (L,) float64
    min_loss: np.ndarray
    final_mse: np.ndarray
    accuracy: np.ndarray
    sat_hidden_start: np.ndarray
    sat_output_start: np.ndarray
    sat_hidden_end: np.ndarray
    sat_output_end: np.ndarray
    grad_norm: np.ndarray
    dead_hidden_start: np.ndarray  # NaN unless the hidden units are ReLUs
    dead_hidden_end: np.ndarray
    loss_ratio_sum: np.ndarray  # the trainability score: kernels/trainability.py
    loss_ratio_tail: np.ndarray
    trainability: np.ndarray
    epoch_diverged: np.ndarray  # (L,) int64, -1 if never
    outputs: np.ndarray  # (N, L) float64; (0, L) when the call kept none
    checkpoint_epochs: np.ndarray  # (K,) int64
    checkpoint_loss: np.ndarray  # (K, L) float64, NaN where not reached
    # With diagnostics (None without): the curvature and dynamics of kernels/curvature.py, per lane.
    sharpness_init: np.ndarray = None  # (L,) float64; NaN where the parameters or the Hessian are not finite
    sharpness_final: np.ndarray = None
    sharpness_max: np.ndarray = None  # over the states reached; NaN if none had a finite sharpness
    epoch_sharpness_max: np.ndarray = None  # (L,) int64, the first state of the max; -1 if none
    steps_above_edge: np.ndarray = None  # (L,) float64: a count, NaN where no threshold applies
    ntk_lambda0: np.ndarray = None
    lr_lambda0: np.ndarray = None
    loss_peak_ratio: np.ndarray = None  # the largest loss over the initial one; inf once a loss is not finite
    catapult: np.ndarray = None  # (L,) bool: a later loss above the initial one, and the run converged
    checkpoint_sharpness: np.ndarray = None  # (K, L) float64, NaN where not reached


def checkpoint_epochs(epochs, k):
    """k log-spaced states in [0, epochs], always 0 and `epochs` (fewer if they coincide)."""
    if k <= 0:
        return np.zeros(0, np.int64)
    if k == 1:
        return np.array([epochs], np.int64)
    states = np.rint(np.geomspace(1, epochs + 1, k)) - 1
    return np.unique(states.astype(np.int64))


def _codes(value, names, what, n_lanes):
    """Per-lane int8 codes from names ('mse'...) or codes, scalar or sequence."""
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        lookup = {name: i for i, name in enumerate(names)}
        distinct, inverse = np.unique(arr, return_inverse=True)
        bad = [v for v in distinct if v not in lookup]
        if bad:
            raise ValueError(f"{what} must be one of {', '.join(names)}; got {bad[0]!r}")
        arr = np.array([lookup[v] for v in distinct], np.int8)[inverse].reshape(arr.shape)
    arr = np.broadcast_to(np.asarray(arr, np.int8), (n_lanes,))
    if arr.size and (arr.min() < 0 or arr.max() >= len(names)):
        raise ValueError(f"{what} codes must be in 0..{len(names) - 1}")
    return _owned(arr)


def _owned(arr, dtype=None):
    """A read-only C-contiguous copy. The kernel is compiled for one kind of input
    array only (a writeable and a read-only argument compile two versions), and
    read-only inputs are faster: LLVM then knows no store can change them."""
    arr = np.array(arr, dtype=dtype, order="C", copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Variant:
    """The model and the update scheme of every lane of a call, as codes (see kernels.kernel for what each
    kernel compiles in).

    activation (hidden units) and output are codes into kernels.vocab.ACTIVATIONS (an output is
    sigmoid or identity), scaling into SCALINGS, reduction into REDUCTIONS; bias: biases exist;
    optimizer: a code into OPTIMIZERS; batch_size: samples per update (0: all); shuffle: each epoch's
    samples in the run's shuffled order; diagnostics: compute the curvature diagnostics (CPU kernels
    only)."""

    activation: int = 0
    output: int = 0
    bias: bool = True
    scaling: int = 0
    reduction: int = 0
    optimizer: int = 0
    batch_size: int = 0
    shuffle: bool = False
    diagnostics: bool = False

    @classmethod
    def of(cls, activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum",
           optimizer="gd", batch_size=0, shuffle=False, diagnostics=False):
        """The variant of these names; ValueError naming a value that is not one."""
        for value, names, what in ((activation, ACTIVATIONS, "activation"), (output, OUTPUTS, "output"),
                                   (scaling, SCALINGS, "scaling"), (reduction, REDUCTIONS, "reduction"),
                                   (optimizer, OPTIMIZERS, "optimizer")):
            if value not in names:
                raise ValueError(f"{what} must be one of {', '.join(names)}; got {value!r}")
        for value, what in ((bias, "bias"), (shuffle, "shuffle"), (diagnostics, "diagnostics")):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{what} must be True or False; got {value!r}")
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 0:
            raise ValueError(f"batch_size must be 0 (the whole data set per update) or a number of samples >= 1; "
                             f"got {batch_size!r}")
        if shuffle and batch_size == 0:
            raise ValueError("shuffle=True needs batch_size >= 1 (a full-batch update does not depend on the order)")
        return cls(ACTIVATIONS.index(activation), ACTIVATIONS.index(output), bool(bias), SCALINGS.index(scaling),
                   REDUCTIONS.index(reduction), OPTIMIZERS.index(optimizer), int(batch_size), bool(shuffle),
                   bool(diagnostics))

    def scales(self, n_inputs, hidden):
        """(s1, s2): the factors on X W1 and a1 W2 of the parameterisation (1.0 where standard)."""
        scaling = SCALINGS[self.scaling]
        if scaling == "standard":
            return 1.0, 1.0
        return 1.0 / np.sqrt(n_inputs), (1.0 / np.sqrt(hidden) if scaling == "ntk" else 1.0 / hidden)


def default_tile(dtype, n_samples, n_inputs, hidden):
    """Lanes per tile: `TILE_LANES`, or fewer (a power of two, at least one AVX-512 vector) for networks so
    large that a tile's parameters, velocities, gradients and outputs would outgrow `TILE_BYTES`."""
    dtype = np.dtype(dtype)
    per_lane = dtype.itemsize * (3 * (n_inputs * hidden + 2 * hidden + 1) + 2 * hidden + n_samples + 16)
    tile = TILE_LANES[dtype.name]
    floor = 64 // dtype.itemsize
    while tile > floor and tile * per_lane > TILE_BYTES:
        tile //= 2
    return tile


# A tile's working set by the count above (which includes velocities a run without momentum never touches).
# Measured (benchmarks/bench_kernels.py --tile-sweep, Zen 3): up to several MiB, a larger tile gains more from
# longer vector loops than it loses in cache; 8 MiB picks within ~10% of the best tile of every shape tried.
TILE_BYTES = 8 * 1024 * 1024


def _per_lane(value, dtype, what, n_lanes):
    arr = np.asarray(value, dtype=dtype)
    try:
        return _owned(np.broadcast_to(arr, (n_lanes,)))
    except ValueError:
        raise ValueError(f"{what} must be a scalar or have one value per lane ({n_lanes}); got shape {arr.shape}") from None


@dataclass
class Batch:
    """A validated call: arrays converted to the working dtype, per-lane
    hyperparameters broadcast to (L,), checkpoints sorted. Made by `prepare`,
    shared by the CPU (`train`) and GPU (`kernels.cuda.train_cuda`) entry points
    so that both accept and refuse exactly the same arguments."""

    X: np.ndarray  # (N, D) read-only, working dtype
    Y: np.ndarray  # (N,)
    dtype: np.dtype
    n_samples: int
    n_inputs: int
    hidden: int
    n_lanes: int
    epochs: int
    checkpoints: np.ndarray  # (K,) int64, as given
    order: np.ndarray  # argsort of checkpoints
    checkpoints_sorted: np.ndarray  # (K,) int64, read-only
    lane_args: tuple  # lr_hidden, lr_output, loss code, bce_eps, momentum, criterion code, margin, tol, early_stop
    opt_args: np.ndarray  # (5, L) working dtype, read-only: the rows of kernels.vocab.OPT_ARGS
    seeds: np.ndarray  # (L,) uint64, read-only: the runs' seeds, which draw the shuffles
    variant: Variant
    b1: np.ndarray  # the biases the kernel is given: the caller's, or zeros (never read) without biases
    b2: np.ndarray

    def kernel_model(self):
        """The CPU kernel's view of the model: (X times s1, (s2, r), output code, bias), r the reduction's
        factor on the gradient (1, or 1/N for the mean). See kernels.kernel."""
        s1, s2 = self.variant.scales(self.n_inputs, self.hidden)
        X = self.X if s1 == 1.0 else _owned(self.X * self.dtype.type(s1))
        r = 1.0 if REDUCTIONS[self.variant.reduction] == "sum" else 1.0 / self.n_samples
        return X, _owned([s2, r], self.dtype), self.variant.output, self.variant.bias

    @property
    def has_bce(self):
        return bool(np.any(self.lane_args[2] == BCE))

    @property
    def has_momentum(self):
        return bool(np.any(self.lane_args[4] != 0))

    @property
    def has_weight_decay(self):
        return bool(np.any(self.opt_args[A_WD] != 0))

    @property
    def general(self):
        """Whether the call needs more than full-batch gradient descent with heavy-ball momentum: another
        optimizer, weight decay or minibatches (the general kernels)."""
        return self.variant.optimizer != GD or self.variant.batch_size > 0 or self.has_weight_decay

    def result(self, out_f, out_i, out_outputs, out_ck, out_d=None, out_ck_sharp=None):
        """The `TrainResult` of a kernel's outputs, the CPU's or the GPU's (rows in the order of
        `kernels.vocab.FLOAT_STATS` and `INT_STATS`, checkpoint losses in sorted order). The kernels
        compute every statistic; here those that do not apply become NaN: accuracy unless every
        target is 0 or 1, saturation of ReLU units, dead units of other activations."""
        ck_loss = np.empty_like(out_ck)
        ck_loss[self.order] = out_ck
        if not np.all((self.Y == 0) | (self.Y == 1)):
            out_f[F_ACCURACY] = np.nan
        rows = (F_SAT_HIDDEN_START, F_SAT_HIDDEN_END) if self.variant.activation == RELU else (
            F_DEAD_HIDDEN_START, F_DEAD_HIDDEN_END)
        out_f[list(rows)] = np.nan
        stats = {name: out_f[i] for i, name in enumerate(FLOAT_STATS)}
        stats.update((name, out_i[i].astype(bool) if name in BOOL_STATS else out_i[i])
                     for i, name in enumerate(INT_STATS))
        if out_d is not None:
            stats.update(_diagnostics(out_d, stats["converged"] & ~stats["diverged"]))
            stats["checkpoint_sharpness"] = np.empty_like(out_ck_sharp)
            stats["checkpoint_sharpness"][self.order] = out_ck_sharp
        return TrainResult(**stats, outputs=out_outputs, checkpoint_epochs=self.checkpoints, checkpoint_loss=ck_loss)


def _diagnostics(out_d, converged):
    """The diagnostics columns of `TrainResult` from a kernel's rows of kernels.vocab.DIAG_ROWS: the
    dynamics as kernels/curvature.py's `dynamics` defines them."""
    rows = dict(zip(DIAG_ROWS, out_d))
    stats = {name: rows[name] for name in ("sharpness_init", "sharpness_final", "sharpness_max", "steps_above_edge",
                                           "ntk_lambda0", "lr_lambda0")}
    stats["epoch_sharpness_max"] = rows["epoch_sharpness_max"].astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):  # inf once a loss was not finite, the first included
        stats["loss_peak_ratio"] = np.where(np.isinf(rows["loss_max"]), np.inf, rows["loss_max"] / rows["loss_init"])
    stats["catapult"] = (rows["loss_rose"] == 1) & converged
    return stats


def _check_arrays(X, Y, W1, b1, W2, b2, bias):
    """Weights: one float dtype, C-contiguous, writeable, consistent shapes; X and Y
    converted to that dtype. Without biases b1 and b2 are ignored (None will do) and zeros stand in
    for them. Returns (X, Y, dtype, b1, b2), the biases the kernels use."""
    dtype = np.asarray(W1).dtype
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"weights must be float64 or float32, got {dtype}")
    if not isinstance(W1, np.ndarray) or W1.ndim != 3:
        raise ValueError(f"W1 must have shape (inputs, hidden, lanes); got {np.shape(W1)}")
    n_inputs, hidden, n_lanes = W1.shape
    if not bias:  # the kernels get zeros (added to nothing, never updated); the caller's are left alone
        b1, b2 = np.zeros((hidden, n_lanes), dtype), np.zeros(n_lanes, dtype)
    for name, p in zip(("W1", "b1", "W2", "b2"), (W1, b1, W2, b2)):
        if not isinstance(p, np.ndarray) or p.dtype != dtype or not p.flags.c_contiguous or not p.flags.writeable:
            raise TypeError(f"{name} must be a writeable C-contiguous {dtype} ndarray (it is updated in place)")
    for name, p, shape in (("b1", b1, (hidden, n_lanes)), ("W2", W2, (hidden, n_lanes)), ("b2", b2, (n_lanes,))):
        if p.shape != shape:
            raise ValueError(f"{name} must have shape {shape}; got {p.shape}")
    X = _owned(X, dtype)
    Y = _owned(np.asarray(Y).reshape(-1), dtype)
    if X.ndim != 2 or X.shape[1] != n_inputs or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X must be (N, {n_inputs}) and Y (N,); got {X.shape} and {Y.shape}")
    return X, Y, dtype, b1, b2


def _learning_rates(lr, lr_hidden, lr_output):
    """(lr_hidden, lr_output), each defaulting to lr."""
    lr_hidden = lr if lr_hidden is None else lr_hidden
    lr_output = lr if lr_output is None else lr_output
    if lr_hidden is None or lr_output is None:
        raise TypeError("give lr, or both lr_hidden and lr_output (the learning rates of the two layers)")
    return lr_hidden, lr_output


def _in_range(arr, what, lo, hi=None):
    """arr itself, or ValueError naming the first value outside [lo, hi) (hi None: no upper bound)."""
    bad = ~(arr >= lo) if hi is None else ~((arr >= lo) & (arr < hi))
    if np.any(bad):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi})"
        raise ValueError(f"{what} must be {allowed}; got {arr[np.flatnonzero(bad)[0]].item()!r}")
    return arr


def _optimizer_lanes(dtype, n_lanes, beta1, beta2, opt_eps, weight_decay, decay_biases, shuffle_seed):
    """(opt_args (5, L) in the working dtype, seeds (L,) uint64), validated (kernels.vocab.OPT_ARGS)."""
    rows = [_in_range(_per_lane(beta1, np.float64, "beta1", n_lanes), "beta1", 0, 1),
            _in_range(_per_lane(beta2, np.float64, "beta2", n_lanes), "beta2", 0, 1),
            _in_range(_per_lane(opt_eps, np.float64, "opt_eps", n_lanes), "opt_eps", 0),
            _in_range(_per_lane(weight_decay, np.float64, "weight_decay", n_lanes), "weight_decay", 0),
            _per_lane(decay_biases, np.bool_, "decay_biases", n_lanes)]
    if not np.all(np.isfinite(rows[3])):
        raise ValueError("weight_decay must be finite")
    seeds = np.asarray(shuffle_seed)
    if seeds.dtype.kind not in "iu" or np.any(seeds < 0) or np.any(seeds >= 2**32):
        raise ValueError("shuffle_seed must be integers in [0, 2**32)")
    return _owned(np.stack([np.asarray(r, dtype) for r in rows])), _per_lane(seeds, np.uint64, "shuffle_seed", n_lanes)


def _check_run(X, Y, W1, dtype, epochs, lr_hidden, lr_output, loss, bce_eps, momentum, criterion, margin, tol,
               early_stop, checkpoints, variant, b1, b2, optimizer_lanes):
    """Shapes in range, data, epochs, checkpoints and per-lane hyperparameters. Returns a `Batch`."""
    n_samples = X.shape[0]
    n_inputs, hidden, n_lanes = W1.shape
    if not (1 <= n_samples <= MAX_SAMPLES and 1 <= n_inputs <= MAX_INPUTS and 1 <= hidden <= MAX_HIDDEN):
        raise ValueError(f"shapes out of range: N={n_samples} (1..{MAX_SAMPLES}), D={n_inputs} (1..{MAX_INPUTS}), H={hidden} (1..{MAX_HIDDEN})")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("inputs and targets must be finite")
    if variant.output != IDENTITY and np.any((Y < 0) | (Y > 1)):
        raise ValueError("targets must lie in [0, 1] for a sigmoid output (output='identity' takes any value)")
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0; got {epochs}")

    if np.ndim(checkpoints) == 0:
        ck = checkpoint_epochs(epochs, int(checkpoints))
    else:
        ck = np.asarray(checkpoints, dtype=np.int64).reshape(-1)
        if ck.size and (ck.min() < 0 or ck.max() > epochs):
            raise ValueError(f"checkpoint states must lie in [0, {epochs}]")
    order = np.argsort(ck, kind="stable")
    ck_sorted = _owned(ck[order])

    lane_args = (
        _per_lane(lr_hidden, dtype, "lr_hidden", n_lanes),
        _per_lane(lr_output, dtype, "lr_output", n_lanes),
        _codes(loss, LOSSES, "loss", n_lanes),
        _per_lane(bce_eps, dtype, "bce_eps", n_lanes),
        _per_lane(momentum, dtype, "momentum", n_lanes),
        _codes(criterion, CRITERIA, "criterion", n_lanes),
        _per_lane(margin, dtype, "margin", n_lanes),
        _per_lane(tol, dtype, "tol", n_lanes),
        _per_lane(early_stop, np.bool_, "early_stop", n_lanes),
    )
    if variant.output == IDENTITY and np.any(lane_args[2] == BCE):
        raise ValueError("loss 'bce' needs a sigmoid output (output='identity' is a regression: use 'mse')")
    if np.any(lane_args[4] != 0) and OPTIMIZERS[variant.optimizer] not in ("gd", "nesterov"):
        raise ValueError(f"momentum is an argument of the optimizers 'gd' and 'nesterov', not of "
                         f"{OPTIMIZERS[variant.optimizer]!r} (its moments are beta1 and beta2)")
    opt_args, seeds = _optimizer_lanes(dtype, n_lanes, *optimizer_lanes)
    return Batch(X, Y, dtype, n_samples, n_inputs, hidden, n_lanes, epochs, ck, order, ck_sorted, lane_args,
                 opt_args, seeds, variant, b1, b2)


def prepare(X, Y, W1, b1, W2, b2, epochs, *, lr=None, lr_hidden=None, lr_output=None, loss="mse", bce_eps=1e-8,
            momentum=0.0, criterion="margin", margin=0.4, tol=0.01, early_stop=False, checkpoints=10,
            activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum",
            optimizer="gd", beta1=0.9, beta2=0.999, opt_eps=1e-8, weight_decay=0.0, decay_biases=False,
            batch_size=0, shuffle=False, shuffle_seed=0, diagnostics=False):
    """Validate and convert the arguments of a training call (those of `train`,
    but for the CPU-only `threads` and `tile`); returns a `Batch`. Raises
    TypeError or ValueError with a one-line message on bad input."""
    variant = Variant.of(activation, output, bias, scaling, reduction, optimizer, batch_size, shuffle, diagnostics)
    lr_hidden, lr_output = _learning_rates(lr, lr_hidden, lr_output)
    X, Y, dtype, b1, b2 = _check_arrays(X, Y, W1, b1, W2, b2, variant.bias)
    return _check_run(X, Y, W1, dtype, epochs, lr_hidden, lr_output, loss, bce_eps, momentum, criterion, margin,
                      tol, early_stop, checkpoints, variant, b1, b2,
                      (beta1, beta2, opt_eps, weight_decay, decay_biases, shuffle_seed))


def train(X, Y, W1, b1, W2, b2, epochs, *, lr=None, lr_hidden=None, lr_output=None, loss="mse", bce_eps=1e-8,
          momentum=0.0, criterion="margin", margin=0.4, tol=0.01, early_stop=False, checkpoints=10,
          activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum",
          optimizer="gd", beta1=0.9, beta2=0.999, opt_eps=1e-8, weight_decay=0.0, decay_biases=False,
          batch_size=0, shuffle=False, shuffle_seed=0, diagnostics=False, outputs=True, threads=1, tile=None):
    """Train L networks of shape D-H-1 by gradient descent (full batch, as the notebooks, by default).

    X (N, D) inputs and Y (N,) targets are shared by all lanes (targets in
    [0, 1] for a sigmoid output). W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)
    are the initial parameters: C-contiguous arrays of one float dtype
    (float64 or float32, the working precision), updated in place to the final
    parameters (b1 and b2 may be None with bias=False). Hyperparameters are
    scalars or per-lane sequences: lr (or lr_hidden for W1, b1 and lr_output
    for W2, b2), loss ('mse'/'bce'), bce_eps, momentum, criterion
    ('margin'/'loss'), margin, tol, early_stop. The model is the same for all
    lanes: activation of the hidden units, output ('sigmoid'/'identity'),
    bias, scaling ('standard'/'ntk'/'mean-field'), reduction ('sum'/'mean');
    see kernels.reference for the math. The update scheme is the same for
    all lanes too: optimizer ('gd' with `momentum` as heavy ball, 'nesterov',
    'adam', 'adamw', 'rmsprop': torch.optim's forms), batch_size (0: the
    whole data set per update; k: minibatches of k) and shuffle (each
    epoch's samples in the order drawn from the lane's `shuffle_seed`);
    per lane: beta1, beta2 (RMSprop's alpha), opt_eps, weight_decay (L2 in
    the gradient, decoupled for 'adamw'), decay_biases, shuffle_seed. The
    hyperparameters an optimizer does not use are ignored, but momentum != 0
    with Adam, AdamW or RMSprop is refused. `checkpoints` is a count of
    log-spaced states or an explicit sequence of states in [0, epochs].
    diagnostics: also the curvature and dynamics of every run (the sharpness of every state, the NTK
    at the start, the loss peak; kernels/curvature.py defines them, kernels/hessian.py computes them),
    in the result's diagnostics fields; slower (docs/performance.md says by how much).
    outputs=False: the result's `outputs` is an (0, L) array, not every lane's output for every
    sample (N x 8 bytes a run that a caller storing no outputs need not allocate).
    `threads` blocks of lanes train in parallel. `tile` (lanes trained
    together in cache; by default chosen by shape) changes speed, never results.
    """
    batch = prepare(X, Y, W1, b1, W2, b2, epochs, lr=lr, lr_hidden=lr_hidden, lr_output=lr_output, loss=loss,
                    bce_eps=bce_eps, momentum=momentum, criterion=criterion, margin=margin, tol=tol,
                    early_stop=early_stop, checkpoints=checkpoints, activation=activation, output=output, bias=bias,
                    scaling=scaling, reduction=reduction, optimizer=optimizer, beta1=beta1, beta2=beta2,
                    opt_eps=opt_eps, weight_decay=weight_decay, decay_biases=decay_biases, batch_size=batch_size,
                    shuffle=shuffle, shuffle_seed=shuffle_seed, diagnostics=diagnostics)
    tile = int(tile or default_tile(batch.dtype, batch.n_samples, batch.n_inputs, batch.hidden))
    if tile < 1:
        raise ValueError(f"tile must be >= 1; got {tile}")
    n_samples, n_lanes = batch.n_samples, batch.n_lanes
    Y, b1, b2 = batch.Y, batch.b1, batch.b2
    lane_args = batch.lane_args
    ck_sorted = batch.checkpoints_sorted
    epochs = batch.epochs
    X, model, out, bias = batch.kernel_model()
    variant = batch.variant
    kernel = _k.train_range_for(variant.activation, bool(np.any(model != 1)), batch.general)
    opt_args, seeds = batch.opt_args, batch.seeds
    optimizer, batch_size, shuffle = variant.optimizer, variant.batch_size, variant.shuffle

    out_f = np.full((N_FLOAT_STATS, n_lanes), np.nan)
    out_i = np.zeros((N_INT_STATS, n_lanes), np.int64)
    out_outputs = np.full((n_samples if outputs else 0, n_lanes), np.nan)
    out_ck = np.full((ck_sorted.size, n_lanes), np.nan)
    diag = variant.diagnostics
    out_d = np.full((N_DIAG_ROWS if diag else 0, n_lanes), np.nan)
    out_ck_sharp = np.full((ck_sorted.size if diag else 0, n_lanes), np.nan)

    def run(lo, hi):
        kernel(X, Y, W1, b1, W2, b2, *lane_args, opt_args, seeds, epochs, ck_sorted, model, out, bias, optimizer,
               batch_size, shuffle, diag, lo, hi, tile, out_f, out_i, out_outputs, out_ck, out_d, out_ck_sharp)

    threads = max(1, min(int(threads or os.cpu_count() or 1), -(-n_lanes // tile))) if n_lanes else 1
    if threads == 1:
        run(0, n_lanes)
    else:
        # Several blocks per thread so lanes that stop early do not leave a thread idle.
        n_blocks = min(-(-n_lanes // tile), 4 * threads)
        bounds = np.linspace(0, -(-n_lanes // tile), n_blocks + 1).astype(np.int64) * tile
        bounds = np.minimum(bounds, n_lanes)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))

    if diag:
        return batch.result(out_f, out_i, out_outputs, out_ck, out_d, out_ck_sharp)
    return batch.result(out_f, out_i, out_outputs, out_ck)


def warm_up(dtypes=(np.float64,), **variant):
    """Compile, or load from Numba's cache, the kernels for these dtypes (and variant: the names of
    `train`'s activation, output, bias, scaling, reduction, optimizer, batch_size, shuffle) now, so that the
    first real call is not slowed by it (seconds on a first start); and the initial weights' compiled draws
    (`kernels.rng`)."""
    from kernels.init import initial_lanes

    for scheme in ("normal", "uniform"):  # the two compiled draws of kernels.rng
        initial_lanes([scheme], [0], [1.0], [0.0], 1, 1)
    X = np.zeros((2, 1))  # 2 samples and 2 hidden units: the mean and ntk's factors are not 1, as in real use
    for dtype in dtypes:
        train(X, np.zeros(2), np.zeros((1, 2, 1), dtype), np.zeros((2, 1), dtype), np.zeros((2, 1), dtype),
              np.zeros(1, dtype), 1, lr=0.1, checkpoints=0, **variant)

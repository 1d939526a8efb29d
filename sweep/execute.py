"""Train one chunk: initial weights, one kernel call, statistics collected as an Arrow table."""
import time

import numpy as np
import pandas as pd

from kernels import checkpoint_epochs, train
from kernels.init import initial_lanes
from kernels.vocab import CRITERIA, LOSSES
from sweep.collect import collect, keeps_outputs, weight_lists
from sweep.datasets import content_digest
from sweep.params import CALL, DEFAULTS, call_arguments


def user_checkpoints(spec, epochs):
    """The states a run records: a count of log-spaced states or an explicit list."""
    if isinstance(spec, (list, tuple, np.ndarray)):
        return np.unique(np.asarray(spec, np.int64))
    return checkpoint_epochs(epochs, int(spec))


def lane_hyperparameters(runs):
    """The kernels' per-lane hyperparameter arguments from a runs table: one array per parameter, in lane
    order (the kernels are compiled per argument type, so every caller passes the same types); the loss
    and the criterion as the kernels' codes (their index in kernels.vocab), not a string per lane. The
    optimizer's hyperparameters that do not apply to a run (null in its row) take their defaults, which
    its optimizer never reads; the shuffles are drawn from the runs' seeds."""
    def or_default(name):
        return runs[name].fillna(DEFAULTS[name]).to_numpy(float)

    return dict(lr_hidden=runs["lr_hidden"].to_numpy(float), lr_output=runs["lr_output"].to_numpy(float),
                loss=_name_codes(runs["loss"], LOSSES),
                bce_eps=runs["bce_eps"].to_numpy(float), momentum=runs["momentum"].to_numpy(float),
                criterion=_name_codes(runs["criterion"], CRITERIA), margin=runs["margin"].to_numpy(float),
                tol=runs["tol"].to_numpy(float), early_stop=runs["early_stop"].to_numpy(bool),
                beta1=or_default("beta1"), beta2=or_default("beta2"), opt_eps=or_default("opt_eps"),
                weight_decay=runs["weight_decay"].to_numpy(float), decay_biases=runs["decay_biases"].to_numpy(bool),
                shuffle_seed=runs["seed"].to_numpy(np.int64))


def _name_codes(column, names):
    """A column of names as int8 indices into `names` (a categorical's categories looked up once)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    table = np.array([names.index(name) for name in column.cat.categories], dtype=np.int8)
    return table[column.cat.codes.to_numpy()]


def model_arguments(runs):
    """The model and update scheme of a chunk's runs (`sweep.params.CALL`, shared by all of them: chunks are
    planned per variant), as the kernels' keyword arguments."""
    first = runs.iloc[0]
    return call_arguments(first[name] for name in CALL)


def _trainer(device):
    if device == "cuda":
        from kernels.cuda import train_cuda

        return lambda *args, threads, **kwargs: train_cuda(*args, **kwargs)
    return train


def train_chunk(runs: pd.DataFrame, X, Y, *, params_schema, with_weights=(), record=None, diagnostics=False, threads=1,
                device="cpu", clock=None):
    """Train every run of a chunk (runs of one shape) in one kernel call; return its rows.

    device: "cpu" (the Numba CPU kernels, `threads` threads) or "cuda" (`kernels.cuda`, one GPU
    thread per run; rows agree with the CPU's to rounding). Runs of several chunks of one shape
    may be trained together: a run's row never depends on the others. with_weights: the weight columns of
    the sweep (`sweep.collect.weight_columns`), () for none; record: its statistics columns (None: all);
    diagnostics: its parts have the diagnostics columns (the runs' own `diagnostics` says which compute them);
    clock: a dict that receives the seconds of the kernel call as "kernel" (the rest is the host's work)."""
    first = runs.iloc[0]
    epochs, hidden, dtype = int(first["epochs"]), int(first["hidden"]), np.dtype(first["dtype"])
    digest = content_digest(X, Y)
    X = np.asarray(X, dtype)
    Y = np.asarray(Y, dtype)
    W1, b1, W2, b2 = initial_lanes(runs["init"].to_numpy(object), runs["seed"].to_numpy(),
                                   runs["init_scale"].to_numpy(float), runs["bias_init"].to_numpy(float),
                                   X.shape[1], hidden, dtype)
    init = weight_lists(W1, b1, W2, b2) if with_weights else None

    ck = user_checkpoints(first["checkpoints"], epochs)
    at_90 = int(0.9 * epochs)
    start = time.perf_counter()
    model = model_arguments(runs)
    result = _trainer(device)(X, Y, W1, b1, W2, b2, epochs, **lane_hyperparameters(runs), **model,
                              checkpoints=np.append(ck, at_90), outputs=keeps_outputs(X.shape[0], record),
                              threads=threads)
    seconds = time.perf_counter() - start
    if clock is not None:
        clock["kernel"] = seconds

    weights = None
    if with_weights:
        final = weight_lists(W1, b1, W2, b2)
        keep = runs["save_weights"].to_numpy(bool)
        weights = {}
        for name in with_weights:
            part, when = name.split("_")
            valid = keep if part.startswith("w") or model["bias"] else np.zeros_like(keep)  # no biases: null
            weights[name] = ((init if when == "init" else final)[part], valid)
    return collect(runs, result, np.arange(ck.size), result.checkpoint_loss[-1], seconds,
                   params_schema=params_schema, weights=weights, dataset_sha256=digest, record=record,
                   diagnostics=diagnostics)

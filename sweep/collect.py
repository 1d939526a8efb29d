"""Collect: a chunk's kernel statistics, beside its runs' parameters, as an Arrow table.

One row per run. The statistics columns and their meaning are listed in
`STAT_COLUMNS` (docs/results.md's column table is generated from it by sweep.doctables).
"""
import numpy as np
import pandas as pd
import pyarrow as pa

OUTCOMES = ("converged", "improving", "saturated", "flat", "diverged")
IMPROVING_DROP = 1e-3  # relative fall of the loss over the last 10% of epochs
SATURATED_SHARE = 0.5  # share of saturated hidden or output pre-activations, or of dead ReLU units

STAT_COLUMNS = {
    "run_id": "hash of the run's resolved parameters (16 hex digits)",
    "converged": "the convergence criterion holds at the last state",
    "epoch_converged": "first state (updates applied) at which the criterion held; null if never",
    "epochs_run": "updates applied: `epochs`, or fewer with early_stop or divergence",
    "final_loss": "loss of the run's own kind (MSE or BCE) at the last state",
    "min_loss": "smallest loss over all states",
    "final_mse": "mean squared error at the last state, whatever the loss (comparable across losses)",
    "accuracy": "share of samples with (output > 0.5) == (target > 0.5) at the last state; null unless every "
                "target is 0 or 1",
    "outcome": "converged, improving (loss fell by > 0.1% over the last 10% of epochs), saturated "
               "(>= half the hidden or output pre-activations, over all samples, saturated, or >= half the ReLU "
               "units dead), flat (neither), diverged (non-finite loss)",
    "diverged": "the loss became non-finite; training of the run stopped there",
    "sat_hidden_start": "share of hidden pre-activations over all samples that are saturated (|z| > 4 for sigmoid, "
                        "|z| > 2 for tanh units; identity units never), initial state; null for ReLU units",
    "sat_output_start": "share of output pre-activations with |z| > 4 (a sigmoid output; 0 for identity), initial state",
    "sat_hidden_end": "the same at the last state",
    "sat_output_end": "the same at the last state",
    "dead_hidden_start": "share of ReLU hidden units with z <= 0 on every sample (dead), initial state; null for "
                         "other activations",
    "dead_hidden_end": "the same at the last state",
    "grad_norm": "Euclidean norm of the full gradient at the last state",
    "loss_ratio_sum": "sum over the states 0..epochs of the loss divided by the initial loss (a ratio not finite or "
                      "above 1e6 counts as 1e6; states after a stop hold the last ratio)",
    "loss_ratio_tail": "mean of those ratios over the last 20 states",
    "trainability": "-loss_ratio_sum if loss_ratio_tail < 1 (trained: negative), else the sum of the reciprocal "
                    "ratios (diverged or stuck: positive); Sohl-Dickstein's measure (docs/statistics.md)",
    "epoch_diverged": "first state whose loss is not finite or above 1e6 times the initial loss; null if none",
    "outputs": "network outputs for every sample at the last state (list); null for data sets of more than 64 "
               "samples (save_weights keeps what recomputes them)",
    "checkpoint_epochs": "states at which the loss was recorded (list)",
    "checkpoint_loss": "the loss at those states; NaN where the run had stopped (list)",
    "dataset_sha256": "hash of the content of the run's data set (16 hex digits; part of its run_id): the data a "
                      "generator made, or that a table held, is identified without being stored in the rows",
    "chunk_seconds": "wall time of the kernel call that trained the run's chunk (timing: not reproducible)",
}
_F, _I, _B = pa.float64(), pa.int64(), pa.bool_()
STAT_TYPES = {
    "converged": _B, "epoch_converged": _I, "epochs_run": _I, "final_loss": _F, "min_loss": _F, "final_mse": _F,
    "accuracy": _F, "outcome": pa.string(), "diverged": _B, "sat_hidden_start": _F, "sat_output_start": _F,
    "sat_hidden_end": _F, "sat_output_end": _F, "dead_hidden_start": _F, "dead_hidden_end": _F, "grad_norm": _F,
    "loss_ratio_sum": _F, "loss_ratio_tail": _F, "trainability": _F, "epoch_diverged": _I, "outputs": pa.list_(_F),
    "checkpoint_epochs": pa.list_(_I), "checkpoint_loss": pa.list_(_F), "dataset_sha256": pa.string(),
    "chunk_seconds": _F,
}
assert list(STAT_TYPES) == [c for c in STAT_COLUMNS if c != "run_id"]
# The curvature diagnostics: columns of the sweeps in which some run has `diagnostics = true` (null in the
# rows of the others). kernels/curvature.py defines them, docs/curvature.md explains them.
DIAGNOSTIC_COLUMNS = {
    "sharpness_init": "largest eigenvalue of the Hessian, over every trained parameter, of the objective the run "
                      "follows (its loss and reduction, L2 of weight decay), initial state; null where not finite",
    "sharpness_final": "the same at the last state",
    "sharpness_max": "its largest value over the states reached",
    "epoch_sharpness_max": "the first state of that largest value",
    "steps_above_edge": "updates made where lr x sharpness (the rate-weighted Hessian's with per-layer rates) exceeded "
                        "the edge of stability: 2 + 2 momentum (gd), (2 + 2 momentum) / (1 + 2 momentum) (nesterov); "
                        "null for adaptive optimizers and minibatches",
    "ntk_lambda0": "largest eigenvalue of the empirical NTK r J J^T at the initial state (J: the outputs' Jacobian "
                   "over the parameters; r: 1 with the sum reduction, 1/N with the mean)",
    "lr_lambda0": "largest eigenvalue of r J diag(lr) J^T: lr x ntk_lambda0 when the layers share one rate "
                  "(lazy below 2, catapult between 2 and about 4 in Lewkowycz et al. 2020)",
    "loss_peak_ratio": "the largest loss over the run divided by the initial loss (inf once a loss is not finite; "
                       "null where every loss is 0)",
    "catapult": "a later loss rose above the initial one, and the run converged",
    "checkpoint_sharpness": "the sharpness at the states of checkpoint_epochs; NaN where the run had stopped (list)",
}
DIAGNOSTIC_TYPES = {
    "sharpness_init": _F, "sharpness_final": _F, "sharpness_max": _F, "epoch_sharpness_max": _I,
    "steps_above_edge": _I, "ntk_lambda0": _F, "lr_lambda0": _F, "loss_peak_ratio": _F, "catapult": _B,
    "checkpoint_sharpness": pa.list_(_F),
}
assert list(DIAGNOSTIC_TYPES) == list(DIAGNOSTIC_COLUMNS)
RECORDABLE = tuple(STAT_TYPES) + tuple(DIAGNOSTIC_TYPES)  # what a grid's `record` may choose (run_id and the
#                                                            parameters always stay)
OUTPUTS_MAX_SAMPLES = 64  # larger data sets: no outputs per row (272 floats a run would outweigh the rest)
WEIGHT_COLUMNS = ["w1_init", "b1_init", "w2_init", "b2_init", "w1_final", "b1_final", "w2_final", "b2_final"]


# Statistics with few distinct values in a part; with the parameters, the columns worth a Parquet dictionary.
FEW_VALUES = ("converged", "epoch_converged", "epochs_run", "outcome", "diverged", "epoch_diverged",
              "checkpoint_epochs", "dataset_sha256")


def dictionary_columns(schema):
    """The columns of a part that Parquet should dictionary-encode: the parameters but run_id, and the
    statistics of `FEW_VALUES`. Trying a dictionary on columns of distinct values (run ids, losses,
    weights) only costs time: a third of a part's write."""
    return [name for name in schema.names if name != "run_id" and (
        name in FEW_VALUES or name not in STAT_TYPES and name not in WEIGHT_COLUMNS)]


def weight_columns(runs):
    """The weight columns of a sweep's parts: none without save_weights; no bias columns when no run has
    biases (runs without biases among runs with them hold nulls there)."""
    if not bool(runs["save_weights"].any()):
        return ()
    with_biases = bool(runs["bias"].any())
    return tuple(c for c in WEIGHT_COLUMNS if with_biases or not c.startswith("b"))


def outcome_codes(converged, diverged, final_loss, loss_at_90, sat_hidden_end, sat_output_end,
                  dead_hidden_end=None):
    """Outcome per run as int8 indices into OUTCOMES (arrays in). A NaN share (not applicable) never counts."""
    improving = np.asarray(final_loss) < (1 - IMPROVING_DROP) * np.asarray(loss_at_90)
    saturated = (np.asarray(sat_hidden_end) >= SATURATED_SHARE) | (np.asarray(sat_output_end) >= SATURATED_SHARE)
    if dead_hidden_end is not None:
        saturated |= np.asarray(dead_hidden_end) >= SATURATED_SHARE
    return np.select([np.asarray(diverged), np.asarray(converged), improving, saturated],
                     [np.int8(OUTCOMES.index(name)) for name in ("diverged", "converged", "improving", "saturated")],
                     default=np.int8(OUTCOMES.index("flat")))


def keeps_outputs(n_samples, record):
    """Whether a chunk's rows store each run's outputs: data sets of at most OUTPUTS_MAX_SAMPLES samples, with
    `outputs` recorded (`record`: None for all). Where not, the kernel need not keep them."""
    return n_samples <= OUTPUTS_MAX_SAMPLES and (record is None or "outputs" in record)


def _nullable(values):
    """A float64 column whose NaNs (statistics that do not apply to a run) are nulls."""
    values = np.asarray(values, np.float64)
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def _state_or_null(states):
    """An int64 column of states whose -1 (never) is null."""
    return pa.array(states, pa.int64(), mask=np.asarray(states) < 0)


def _list_column(matrix, value_type, valid=None):
    """(lanes, k) array -> list<value_type> column, one list per lane (null where not valid)."""
    matrix = np.ascontiguousarray(matrix)
    n, k = matrix.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(k), pa.int32())
    mask = None if valid is None else pa.array(~np.asarray(valid, bool))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), value_type), mask=mask)


def weight_lists(W1, b1, W2, b2):
    """Lane arrays -> {w1, b1, w2, b2}: (lanes, size) float64 matrices, W1 flattened row-major (inputs, hidden).

    Always copies: the kernel trains the lane arrays in place, so the initial weights must not be views."""
    lanes = W1.shape[-1]
    return {
        "w1": np.array(np.moveaxis(W1, -1, 0).reshape(lanes, -1), dtype=np.float64),
        "b1": np.array(np.moveaxis(b1, -1, 0).reshape(lanes, -1), dtype=np.float64),
        "w2": np.array(np.moveaxis(W2, -1, 0).reshape(lanes, -1), dtype=np.float64),
        "b2": np.array(np.reshape(b2, (lanes, 1)), dtype=np.float64),
    }


def result_schema(params_schema, weights=(), record=None, diagnostics=False):
    """The Arrow schema of every part of a sweep: its parameter columns, the statistics it records (`record`:
    None for all, else a tuple of `RECORDABLE` in their order; the diagnostics only where `diagnostics`: some
    run of the sweep computes them), the weight columns named in `weights` (see `weight_columns`)."""
    kinds = dict(STAT_TYPES, **(DIAGNOSTIC_TYPES if diagnostics else {}))
    fields = list(params_schema) + [pa.field(name, kind) for name, kind in kinds.items()
                                    if record is None or name in record]
    fields += [pa.field(name, pa.list_(pa.float64())) for name in weights]
    return pa.schema(fields, metadata=params_schema.metadata)


def params_table(params, schema):
    """The parameter columns of a chunk's runs as an Arrow table of `schema`: what `pa.Table.from_pandas`
    makes of them (names as strings, NaN as null), built column by column without a Python object per
    value: a value shared by every run is repeated by Arrow, a name is taken from its categories."""
    n = len(params)
    arrays = []
    for field in schema:
        column = params[field.name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy()
            names = pa.array(column.cat.categories.to_numpy(dtype=object), field.type)
            if n and codes.min() >= 0 and codes.min() == codes.max():
                arrays.append(pa.repeat(names[int(codes[0])], n))
            else:
                arrays.append(names.take(pa.array(codes, mask=codes < 0)))
            continue
        values = column.to_numpy()
        if n and values.dtype.kind in "biuf" and values[0] == values[0] and (values == values[0]).all():
            arrays.append(pa.repeat(pa.scalar(values[0].item(), field.type), n))
        else:
            arrays.append(pa.Array.from_pandas(values if values.dtype != object else column, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def collect(params: pd.DataFrame, result, ck_columns, loss_at_90, seconds, *, params_schema=None, weights=None,
            dataset_sha256=None, record=None, diagnostics=False):
    """Arrow table of one chunk.

    params: the chunk's runs (lane order), their parameter columns with run_id.
    result: kernels.TrainResult (outputs kept where `keeps_outputs`; an (0, L) array gives nulls).
    ck_columns: indices into result.checkpoint_* of the user's checkpoints.
    loss_at_90: loss at 90% of the epochs (for `outcome`). dataset_sha256: the content hash of the chunk's
    data set.
    params_schema: the Arrow schema of the parameter columns, the same for every part.
    weights: None or {"w1_init": ((lanes, size) matrix, row-valid mask), ...} for save_weights, the columns of
    `weight_columns` in that order. record: the statistics columns to build (None: all). diagnostics: the
    sweep's parts have the diagnostics columns (null where the result has none).
    """
    n = len(params)
    if params_schema is None:
        table = pa.Table.from_pandas(params.reset_index(drop=True), preserve_index=False)
    else:
        table = params_table(params, params_schema)
    # The sweep's schema, pandas metadata included (the runs table holds names as categoricals, the parts as
    # strings: `sweep.runner.params_schema`).
    params_table_schema = table.schema if params_schema is None else params_schema
    ck_epochs = np.broadcast_to(result.checkpoint_epochs[ck_columns], (n, len(ck_columns)))
    cols = {  # built only if recorded
        "converged": lambda: pa.array(result.converged),
        "epoch_converged": lambda: _state_or_null(result.epoch_converged),
        "epochs_run": lambda: pa.array(result.epochs_run, pa.int64()),
        "final_loss": lambda: pa.array(result.final_loss),
        "min_loss": lambda: pa.array(result.min_loss),
        "final_mse": lambda: pa.array(result.final_mse),
        "accuracy": lambda: _nullable(result.accuracy),
        "outcome": lambda: pa.array(OUTCOMES, pa.string()).take(outcome_codes(
            result.converged, result.diverged, result.final_loss, loss_at_90, result.sat_hidden_end,
            result.sat_output_end, result.dead_hidden_end)),
        "diverged": lambda: pa.array(result.diverged),
        "sat_hidden_start": lambda: _nullable(result.sat_hidden_start),
        "sat_output_start": lambda: pa.array(result.sat_output_start),
        "sat_hidden_end": lambda: _nullable(result.sat_hidden_end),
        "sat_output_end": lambda: pa.array(result.sat_output_end),
        "dead_hidden_start": lambda: _nullable(result.dead_hidden_start),
        "dead_hidden_end": lambda: _nullable(result.dead_hidden_end),
        "grad_norm": lambda: pa.array(result.grad_norm),
        "loss_ratio_sum": lambda: pa.array(result.loss_ratio_sum),
        "loss_ratio_tail": lambda: pa.array(result.loss_ratio_tail),
        "trainability": lambda: pa.array(result.trainability),
        "epoch_diverged": lambda: _state_or_null(result.epoch_diverged),
        "outputs": lambda: _list_column(result.outputs.T, pa.float64())
        if result.outputs.shape[0] else pa.nulls(n, pa.list_(pa.float64())),  # kept as `keeps_outputs` says
        "checkpoint_epochs": lambda: _list_column(ck_epochs, pa.int64()),
        "checkpoint_loss": lambda: _list_column(result.checkpoint_loss[ck_columns].T, pa.float64()),
        "dataset_sha256": lambda: pa.repeat(pa.scalar(dataset_sha256, pa.string()), n),
        "chunk_seconds": lambda: pa.array(np.full(n, seconds)),
    }
    if diagnostics:
        cols.update(_diagnostic_columns(result, ck_columns, n))
    for name, column in cols.items():
        if record is None or name in record:
            table = table.append_column(name, column())
    if weights is not None:
        for name, (matrix, valid) in weights.items():
            table = table.append_column(name, _list_column(matrix, pa.float64(), valid))
    return table.cast(result_schema(params_table_schema, tuple(weights or ()), record, diagnostics))


def _diagnostic_columns(result, ck_columns, n):
    """Builders of the diagnostics columns from a `kernels.TrainResult` (all null where it has none)."""
    if result.sharpness_init is None:
        return {name: (lambda kind=kind: pa.nulls(n, kind)) for name, kind in DIAGNOSTIC_TYPES.items()}
    steps = result.steps_above_edge
    return {
        "sharpness_init": lambda: _nullable(result.sharpness_init),
        "sharpness_final": lambda: _nullable(result.sharpness_final),
        "sharpness_max": lambda: _nullable(result.sharpness_max),
        "epoch_sharpness_max": lambda: _state_or_null(result.epoch_sharpness_max),
        "steps_above_edge": lambda: pa.array(np.nan_to_num(steps, nan=-1).astype(np.int64), pa.int64(),
                                             mask=np.isnan(steps)),
        "ntk_lambda0": lambda: _nullable(result.ntk_lambda0),
        "lr_lambda0": lambda: _nullable(result.lr_lambda0),
        "loss_peak_ratio": lambda: _nullable(result.loss_peak_ratio),
        "catapult": lambda: pa.array(result.catapult),
        "checkpoint_sharpness": lambda: _list_column(result.checkpoint_sharpness[ck_columns].T, pa.float64()),
    }

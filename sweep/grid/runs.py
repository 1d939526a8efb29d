"""The runs table: `expand(grid)`, one row per run.

`expand` returns one row per run: ``run_id`` (`sweep.grid.ids`) then every
parameter (the Parquet column names), runs in the order of the grid file
(axes as they appear under ``[grid]``, then each ``[[zip]]``, the last one
fastest), extras appended, excludes removed. Two identical runs are an error.

The table is built as vocabulary and codes: each parameter's distinct
values once, and per run an index into them, so that a million runs cost
a few array operations per parameter. It is kept compact, so that a grid
of 16.8 million runs (a 4096 x 4096 map) fits in a few GB: a parameter
fixed for the whole grid is one value seen through a read-only stride-0
view (no memory per run), names (loss, dataset, activation...) are
categoricals, and run ids are built from fixed-width bytes without a
Python string per run. The parts on disk hold the names as strings
(`sweep.runner.params_schema`).
"""
import math

import numpy as np
import pandas as pd

from sweep.datasets import first_target_outside_unit_interval
from sweep.errors import GridError
from sweep.grid.applies import RULE, neutralize
from sweep.grid.errors import describe_point, in_file
from sweep.grid.ids import id_order, id_strings, learning_rates, run_ids
from sweep.params import PARAM, describe

FLOAT_MATCH_RTOL = 1e-9


def expand(grid):
    """The runs table of a grid: a DataFrame, one row per run (see the module docstring).

    GridError if two runs are identical, an exclude matches nothing, every
    run is excluded, or an explicit checkpoint lies beyond a run's epochs.
    """
    return expand_ordered(grid)[0]


def expand_ordered(grid):
    """(runs table, the permutation that sorts its run ids): `expand`, and the sort it makes to find
    duplicates, which planning and the grid hash need too (a sort of 16.8 million ids takes seconds)."""
    with in_file(grid.file):
        return _expand(grid)


def _expand(grid):
    blocks = [grid.main] + list(grid.extras)
    vocab = {name: {} for name in PARAM}
    parts = [_block_codes(b, vocab) for b in blocks]
    codes = parts[0] if len(parts) == 1 else {name: np.concatenate([p[name] for p in parts]) for name in PARAM}
    source = np.repeat(np.arange(len(blocks), dtype=np.int32), [b.size for b in blocks])
    values = {name: list(vocab[name]) for name in PARAM}
    n = source.size

    keep = np.ones(n, dtype=bool)
    for exc in grid.excludes:
        hit = np.ones(n, dtype=bool)
        for name, wanted in exc.match.items():
            table = np.array([any(_matches(v, w) for w in wanted) for v in values[name]], dtype=bool)
            hit &= table[codes[name]]
        if not hit.any():
            raise GridError("matches no run; check its values against the grid (numbers match to 9 significant "
                            "digits; `sweep plan` prints the values)", key=exc.path)
        keep &= ~hit
    if not keep.any():
        raise GridError("every run is excluded by [[exclude]]; nothing to run")
    if not keep.all():
        codes = {name: c[keep] for name, c in codes.items()}
        source = source[keep]

    replaced = neutralize(values, codes)
    _check_checkpoints_within_epochs(values, codes, source, blocks)
    _check_data_fits_dtype(grid, values, codes)
    _check_output_fits(grid, values, codes, source, blocks)
    _check_record_is_computed(grid, values, codes)

    rates = learning_rates(values, codes)
    ids = np.asarray(run_ids(values, codes, {name: d.digest for name, d in grid.datasets.items()}, rates),
                     dtype="S16")
    order = id_order(ids)
    if _has_duplicates(ids, order):
        _duplicate_error(ids, source, blocks, values, codes, replaced)
    columns = {"run_id": pd.array(id_strings(ids), dtype="str")}
    for name in PARAM:
        columns[name] = _value_column(name, values[name], codes[name])
    columns["lr"], columns["lr_hidden"], columns["lr_output"] = rates
    return pd.DataFrame(columns, copy=False), order


def _check_record_is_computed(grid, values, codes):
    """`record` may name a diagnostics column only where some run (after the exclusions) computes them."""
    from sweep.collect import DIAGNOSTIC_TYPES

    asked = [c for c in grid.record or () if c in DIAGNOSTIC_TYPES]
    if asked and not np.array(values["diagnostics"], dtype=bool)[codes["diagnostics"]].any():
        raise GridError(f"{asked[0]!r} is a diagnostics column, and no run of the grid sets diagnostics = true; "
                        f"set it, or leave {asked[0]!r} out of record", key="record")


def _combinations(*codes):
    """The distinct tuples of codes over the runs (a code fixed for the whole grid is one stride-0 value)."""
    varying = [c for c in codes if c.strides != (0,)]
    if not varying:
        return {tuple(int(c[0]) for c in codes)}
    rows = np.unique(np.stack([np.asarray(c) for c in codes]), axis=1)
    return {tuple(int(v) for v in col) for col in rows.T}


def _has_duplicates(ids, order):
    """Whether two of the 'S16' ids are equal, given the permutation that sorts them."""
    ordered = ids[order]
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _block_codes(block, vocab):
    """{name: int array of vocabulary indices} for every run of a block, last axis fastest."""
    n = block.size
    codes = {}
    for name, value in block.fixed.items():  # one value for the whole block: a read-only stride-0 view
        codes[name] = np.broadcast_to(np.int64(vocab[name].setdefault(value, len(vocab[name]))), (n,))
    stride = n
    for axis in block.axes:
        stride //= axis.size
        index = (np.arange(n, dtype=np.int64) // stride) % axis.size
        for name in axis.names:
            codes[name] = _vocabulary_codes(vocab[name], axis.column(name))[index]
    return codes


def _vocabulary_codes(vocab, values):
    """The index of each value in `vocab` (a dict value -> index, in order of first appearance), adding
    the new ones. A column of distinct values new to `vocab` (a long axis of seeds) is added at once."""
    if not vocab and len(values) > 1 and len(set(values)) == len(values):
        vocab.update(zip(values, range(len(values))))
        return np.arange(len(values), dtype=np.int64)
    return np.array([vocab.setdefault(v, len(vocab)) for v in values], dtype=np.int64)


def _matches(value, wanted):
    if isinstance(value, float) and isinstance(wanted, float):
        return math.isclose(value, wanted, rel_tol=FLOAT_MATCH_RTOL, abs_tol=0.0)
    return type(value) is type(wanted) and value == wanted


def _check_checkpoints_within_epochs(values, codes, source, blocks):
    lists = values["checkpoints"]
    if not lists or not isinstance(lists[0], tuple):
        return
    last = np.array([max(v) if v else 0 for v in lists], dtype=np.int64)[codes["checkpoints"]]
    epochs = np.array(values["epochs"], dtype=np.int64)[codes["epochs"]]
    bad = np.flatnonzero(last > epochs)
    if bad.size:
        i = bad[0]
        ck = list(values["checkpoints"][codes["checkpoints"][i]])
        raise GridError(f"checkpoints: {ck} goes beyond epochs = {epochs[i]} (runs of {blocks[source[i]].path}); "
                        f"checkpoint epochs must lie in [0, epochs]")


def _check_data_fits_dtype(grid, values, codes):
    """Every value of a data set used in float32 runs must be a finite float32 (1e39 is not)."""
    pairs = _combinations(codes["dataset"], codes["dtype"])
    for d, t in sorted(pairs):
        name, dtype = values["dataset"][d], values["dtype"][t]
        if dtype == "float64":
            continue
        limit = float(np.finfo(dtype).max)
        for key, array in (("inputs", grid.datasets[name].X), ("targets", grid.datasets[name].Y)):
            big = np.argwhere(~(np.abs(array) <= limit))
            if big.size:
                where = "".join(f"[{i}]" for i in big[0])
                raise GridError(f"{array[tuple(big[0])]:g} does not fit in {dtype} (at most {limit:.4g} in size), and "
                                f"runs with dtype = \"{dtype}\" use this data set", key=f"datasets.{name}.{key}{where}")


def _check_output_fits(grid, values, codes, source, blocks):
    """A sigmoid output needs targets in [0, 1] and is the only output BCE takes."""
    pairs = _combinations(codes["output"], codes["loss"], codes["dataset"])
    for o, l, d in sorted(pairs):
        output, loss, name = values["output"][o], values["loss"][l], values["dataset"][d]
        if output != "sigmoid":
            if loss == "bce":
                i = np.flatnonzero((codes["output"] == o) & (codes["loss"] == l))[0]
                raise GridError(f'loss = "bce" needs output = "sigmoid" (a linear output is a regression: use '
                                f'loss = "mse"); runs of {blocks[source[i]].path} combine them')
            continue
        data = grid.datasets[name]
        bad = first_target_outside_unit_interval(data)
        if bad is not None:
            raise GridError(f"data set {name!r} has targets outside [0, 1] (target {bad} is {data.Y[bad]:g}), which "
                            f'a sigmoid output cannot reach: set output = "identity" for its runs',
                            key=f"datasets.{name}")


def _duplicate_error(ids, source, blocks, values, codes, replaced):
    first = {}
    for i, run in enumerate(ids.tolist()):
        if run in first:
            pair = [first[run], i]
            break
        first[run] = i
    moot = [name for name, own in replaced.items() if own[pair[0]] != own[pair[1]]]
    if moot:
        name = moot[0]
        params = {n: values[n][codes[n][pair[0]]] for n in RULE[name].deciding}
        raise GridError(f"runs with {describe_point(params)} differ only in {name}, which applies only where "
                        f"{RULE[name].where} (elsewhere it is {_shown(RULE[name].neutral)}); give {name} its "
                        f"values in a [[zip]] or [[extra]] with the runs it applies to, or [[exclude]] the others")
    varying = [n for n in PARAM if len(values[n]) > 1 and np.any(codes[n] != codes[n][0])] or list(PARAM)
    params = {n: values[n][codes[n][pair[0]]] for n in varying}
    where = [blocks[b].path for b in sorted({int(source[r]) for r in pair})]
    where_text = " and ".join(where) if len(where) > 1 else f"twice in {where[0]}"
    raise GridError(f"duplicate run ({describe_point(params)}) from {where_text}; "
                    f"every run must differ (remove it from an [[extra]] or [[exclude]] it)")


def _shown(value):
    """A neutral value as the rows hold it: null, or as written in a grid file."""
    return "null" if value is None else describe(value)


def _value_column(name, values, codes):
    """The column of a parameter: its vocabulary `values` taken at `codes` (names as a categorical; a value
    fixed for every run as a stride-0 view of it)."""
    kind = PARAM[name].kind
    if kind in ("choice", "dataset"):
        small = np.int8 if len(values) < 128 else np.int32
        return pd.Categorical.from_codes(np.asarray(codes, dtype=small), categories=values)
    if kind == "float":
        table = np.array(values, dtype=np.float64)
    elif kind == "bias_init":  # "draw" is null in the rows
        table = np.array([np.nan if v == "draw" else v for v in values], dtype=np.float64)
    elif kind == "int" or (kind == "checkpoints" and all(isinstance(v, int) for v in values)):
        table = np.array(values, dtype=np.int64)
    elif kind == "bool":
        table = np.array(values, dtype=bool)
    else:
        table = np.empty(len(values), dtype=object)
        table[:] = values
    if codes.strides == (0,):
        return np.broadcast_to(table[codes[:1]], codes.shape)
    return table[codes]

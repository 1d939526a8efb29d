"""`sweep.summarize`: one row per group of runs, and `sweep summary`'s renderings.

``summarize(df, by=[...])`` groups a results DataFrame (as `sweep.load`
returns it) by parameter columns and gives, per group: the number of runs,
how many converged and the rate with its 95% Wilson score interval; the
time to a solution over all runs (`sweep.survival`: the fraction solved by
the horizon, the median epochs to a solution with its 95% interval, and the
expected epochs with restarts, with a bootstrap interval); the median and
quartiles of the epoch at which the converged runs converged; the share of
each outcome; and the median final MSE and final loss. ``format_summary``
renders such a table as an aligned text table, Markdown, CSV or JSON.
Every statistic and its formula: docs/statistics.md.
"""
import json
import math
import textwrap

import numpy as np
import pandas as pd

from sweep import survival
from sweep.collect import OUTCOMES
from sweep.errors import SweepError
from sweep.grid.applies import RULE
from sweep.params import NAMES as PARAMETER_COLUMNS

Z95 = 1.959963984540054  # two-sided 95% normal quantile

COLUMNS = ["runs", "converged", "rate", "rate_low", "rate_high",
           "horizon", "solved_at_horizon",
           "epochs_to_solve_median", "epochs_to_solve_low", "epochs_to_solve_high", "epochs_to_solve_censored",
           "restart_epochs", "restart_epochs_low", "restart_epochs_high", "restart_cutoff",
           "epochs_converged_median", "epochs_converged_q1", "epochs_converged_q3",
           *(f"share_{o}" for o in OUTCOMES), "final_mse_median", "final_loss_median"]
NEEDED = ["converged", "epoch_converged", "epochs_run", "epochs", "diverged", "outcome", "final_loss", "final_mse"]
NOT_GROUPS = ("seed", "run_id")  # never a default group key
FORMATS = ("table", "markdown", "csv", "json")
ALL = "all"  # the label of the single group when there is nothing to group by
WIDTH = 100  # the table and Markdown formats fit this many characters unless wide


def wilson_interval(successes, n, z=Z95):
    """Wilson score interval for a binomial proportion: (low, high), vectorised.

    successes and n broadcast against each other (scalars give NumPy scalars).
    Where n == 0 both bounds are NaN. The bounds are exactly 0 when
    successes == 0 and exactly 1 when successes == n.
    """
    k = np.asarray(successes, dtype=float)
    n_ = np.asarray(n, dtype=float)
    if np.any(n_ < 0) or np.any(k < 0) or np.any(k > n_):
        raise ValueError("wilson_interval: expected 0 <= successes <= n")
    k, n_ = np.broadcast_arrays(k, n_)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n_
        z2 = z * z
        denom = 1.0 + z2 / n_
        centre = (p + z2 / (2.0 * n_)) / denom
        half = (z / denom) * np.sqrt(p * (1.0 - p) / n_ + z2 / (4.0 * n_ * n_))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == n_, 1.0, high)
    empty = n_ == 0
    low = np.where(empty, np.nan, low)
    high = np.where(empty, np.nan, high)
    return low[()], high[()]


# --------------------------------------------------------------------------- the event data of runs

def time_to_solution(df):
    """(time, solved, horizon) of each run of a results DataFrame: the event data of `sweep.survival`.

    solved: the criterion held at some epoch (epoch_converged is set), even
    if it no longer held at the end (then converged is False); time: that
    first epoch, epoch_converged. A run never solved is censored at its
    horizon: epochs_run, the last state trained (all of `epochs`: only a
    solved run stops early), except that a diverged run, whose loss is no
    longer finite and which therefore can never be solved, counts as unsolved
    through its planned horizon, `epochs`. horizon: that last epoch a run
    was followed to, solved or not (time <= horizon). NumPy arrays, in df's
    order: ``t, F = survival.fraction_solved(*time_to_solution(df))``.
    """
    missing = [c for c in ("epoch_converged", "epochs_run", "epochs", "diverged") if c not in df.columns]
    if missing:
        raise SweepError(f"cannot compute the time to a solution: the results have no {', '.join(missing)} column")
    first = pd.to_numeric(df["epoch_converged"], errors="coerce").astype(float).to_numpy()
    solved = np.isfinite(first)
    run = pd.to_numeric(df["epochs_run"], errors="coerce").astype(float).to_numpy()
    planned = pd.to_numeric(df["epochs"], errors="coerce").astype(float).to_numpy()
    diverged = df["diverged"].fillna(False).astype(bool).to_numpy()
    horizon = np.where(diverged, np.fmax(run, planned), run)
    return np.where(solved, first, horizon), solved, horizon


# --------------------------------------------------------------------------- groups

def axes_of(path):
    """The axis names of the grid of a results directory, in the grid's order, or None if unknown.

    The order is the manifest's "axes" list (`sweep.runner.prepare` writes it: the manifest's
    "grid" is stored with sorted keys, so it does not keep the order).
    """
    from sweep import store

    try:
        found = store.read_manifest(store.layout_of(path))
    except (SweepError, OSError):
        return None
    if found is None:
        return None
    manifest = found[0]
    axes = manifest.get("axes")
    return [str(n) for n in axes] if isinstance(axes, list) else None


def default_by(df, axes=None):
    """Every parameter column of df that takes more than one value (seed excluded): those in `axes`
    in that order, then the others in column order.

    axes: the grid's axis names in the grid's order; default: `axes_of`
    df.attrs["path"] when df carries its results directory there, else none
    (column order).
    """
    varying = [name for name in df.columns
               if name in PARAMETER_COLUMNS and name not in NOT_GROUPS and df[name].nunique(dropna=False) > 1]
    if axes is None and df.attrs.get("path"):
        axes = axes_of(df.attrs["path"])
    axes = [a for a in (axes or []) if a in varying]
    if ("lr_hidden" in varying or "lr_output" in varying) and "lr" not in axes:  # lr is theirs where they agree
        varying = [name for name in varying if name != "lr"]
    by = list(dict.fromkeys([*axes, *varying]))
    if "lr" in axes:  # the layer rates where they are lr, as the grid never set them
        by = [n for n in by if n not in ("lr_hidden", "lr_output") or not (df[n] == df["lr"]).all()]
    # A parameter that applies to some runs only (sweep/grid/applies.py), no axis, and that the others
    # determine splits no group: beta1, null for gradient descent and one value for Adam.
    for name in reversed(by):
        if name in axes or name not in RULE:
            continue
        others = [n for n in by if n != name]
        if others and df.groupby(others, observed=True, dropna=False)[name].nunique(dropna=False).max() <= 1:
            by.remove(name)
    return by


def _resolve_by(df, by, axes):
    if by is None:
        return default_by(df, axes)
    if isinstance(by, str):
        by = [part.strip() for part in by.split(",") if part.strip()]
    by = list(by)
    valid = [c for c in df.columns if c in PARAMETER_COLUMNS]
    for name in by:
        if name not in valid:
            raise SweepError(f"cannot group by {name!r}: not a parameter column of these results; "
                             f"valid: {', '.join(valid) if valid else '(none)'}")
    if len(set(by)) != len(by):
        raise SweepError(f"--by names a column twice: {', '.join(by)}")
    return by


SURVIVAL = ["horizon", "solved_at_horizon", "epochs_to_solve_median", "epochs_to_solve_low", "epochs_to_solve_high",
            "epochs_to_solve_censored", "restart_epochs", "restart_epochs_low", "restart_epochs_high",
            "restart_cutoff"]


def _survival_row(time, solved, horizon, resamples, seed):
    """The SURVIVAL columns of one group."""
    if time.size == 0:
        return [math.nan] * 5 + [False] + [math.nan] * 4
    _, F = survival.fraction_solved(time, solved, horizon)
    median = survival.median_epochs(time, solved)
    best, cutoff = survival.restart_epochs(time, solved)
    low, high = survival.restart_interval(time, solved, resamples=resamples, seed=seed)
    return [float(max(horizon.max(), time.max())), float(F[-1]), median.value, median.low, median.high, median.later,
            best, low, high, cutoff]


def summarize(df, by=None, *, axes=None, resamples=survival.RESAMPLES, seed=survival.SEED):
    """One row per group of runs, indexed by the group keys in sorted order.

    by: parameter column names (a list, or one comma-separated string);
    default: every parameter column that varies in df, except seed, in the
    grid's axis order when it is known (`default_by`; axes: the grid's axis
    names, in order). With nothing to group by, the result is one row
    labelled ``"all"``. Categorical keys sort in category order; only groups
    that hold runs are listed. resamples, seed: the bootstrap of restart_epochs.

    Columns (docs/statistics.md has each formula):

    - runs; converged (count) and rate, with rate_low/rate_high its 95%
      Wilson interval (converged: the criterion holds at the last state);
    - horizon: the largest epoch a run of the group was followed to;
      solved_at_horizon: the fraction solved by then (Kaplan-Meier);
    - epochs_to_solve_median over all runs (unsolved runs are later than
      their horizon), epochs_to_solve_low/_high its 95% interval (inf: later
      than the horizon); NaN with epochs_to_solve_censored True when fewer
      than half are solved by the horizon;
    - restart_epochs: the least expected epochs to a solution when unsolved
      runs are restarted after restart_cutoff epochs (inf, cutoff NaN, when
      nothing is solved), restart_epochs_low/_high its bootstrap 95% interval;
    - epochs_converged_median, _q1, _q3 of epoch_converged over the
      converged runs only (NaN when none converged): conditional on success;
    - share_<outcome> for each outcome (they sum to 1);
    - final_mse_median (comparable across losses) and final_loss_median (the
      run's own loss; NaN when the group mixes loss kinds); a non-finite
      final value counts as +inf.
    """
    by = _resolve_by(df, by, axes)
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise SweepError(f"cannot summarize: the results have no {', '.join(missing)} column")

    converged = df["converged"].fillna(False).astype(bool).to_numpy()
    epochs = pd.to_numeric(df["epoch_converged"], errors="coerce").astype(float).to_numpy()
    final_loss = pd.to_numeric(df["final_loss"], errors="coerce").astype(float).to_numpy()
    final_mse = pd.to_numeric(df["final_mse"], errors="coerce").astype(float).to_numpy()
    outcome = df["outcome"].astype(object).to_numpy()
    time, solved, horizon = time_to_solution(df)
    data = {
        "converged": converged.astype(np.int64),
        "epochs": np.where(converged, epochs, np.nan),
        "final_loss": np.where(np.isfinite(final_loss), final_loss, np.inf),
        "final_mse": np.where(np.isfinite(final_mse), final_mse, np.inf),
        "loss_kind": df["loss"].astype(object).to_numpy() if "loss" in df.columns else np.zeros(len(df)),
    }
    for o in OUTCOMES:
        data[f"share_{o}"] = (outcome == o).astype(float)
    data = pd.DataFrame(data, index=df.index)

    if by:
        groups = data.groupby([df[c] for c in by], observed=True, sort=True, dropna=False)
    else:
        groups = data.groupby(np.zeros(len(data), dtype=np.int64))

    out = pd.DataFrame({"runs": groups.size().astype(np.int64)})
    out["converged"] = groups["converged"].sum().astype(np.int64)
    out["rate"] = out["converged"] / out["runs"].where(out["runs"] > 0)
    low, high = wilson_interval(out["converged"].to_numpy(), out["runs"].to_numpy())
    out["rate_low"] = np.atleast_1d(low)
    out["rate_high"] = np.atleast_1d(high)

    codes = groups.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(out) + 1))
    rows = [_survival_row(time[order[a:b]], solved[order[a:b]], horizon[order[a:b]], resamples, seed)
            for a, b in zip(bounds[:-1], bounds[1:])]
    surv = pd.DataFrame(rows, columns=SURVIVAL, index=out.index) if rows else pd.DataFrame(columns=SURVIVAL)
    for name in SURVIVAL:
        out[name] = surv[name].astype(bool if name == "epochs_to_solve_censored" else float)

    out["epochs_converged_median"] = groups["epochs"].median()
    out["epochs_converged_q1"] = groups["epochs"].quantile(0.25)
    out["epochs_converged_q3"] = groups["epochs"].quantile(0.75)
    for o in OUTCOMES:
        out[f"share_{o}"] = groups[f"share_{o}"].mean()
    out["final_mse_median"] = groups["final_mse"].median()
    mixed = groups["loss_kind"].nunique(dropna=False) > 1
    out["final_loss_median"] = groups["final_loss"].median().where(~mixed)
    out = out[COLUMNS]
    if not by:
        out.index = pd.Index([ALL] * len(out), name="group")
        if out.empty:  # no runs at all: still one (empty) group
            out = pd.DataFrame([[0, 0] + [np.nan] * (len(COLUMNS) - 2)], columns=COLUMNS,
                               index=pd.Index([ALL], name="group"))
            out[["runs", "converged"]] = out[["runs", "converged"]].astype(np.int64)
            out["epochs_to_solve_censored"] = False
    return out


# --------------------------------------------------------------------------- rendering

def _keys_and_stats(summary):
    """(key column names, flat DataFrame with the keys first)."""
    index = summary.index
    names = [n for n in index.names if n is not None]
    if not names and isinstance(index, pd.RangeIndex):
        flat = summary.reset_index(drop=True)
    else:
        flat = summary.reset_index()
        if not names:
            names = [c for c in flat.columns if c not in summary.columns]
    return names, flat


def _plain(value):
    """A JSON-able Python value: NaN/inf -> None, NumPy scalars -> Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    return str(value) if not isinstance(value, str) else value


NULL_MEANS = {"bias_init": "draw"}  # parameter columns whose null is a value (sweep.params)


def _key_text(value, name=None):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return NULL_MEANS.get(name, "NA")
    if isinstance(value, (np.floating, float)):
        return format(float(value), ".6g")
    if isinstance(value, (np.bool_, bool)):
        return str(bool(value)).lower()
    return str(value)


def _pct(x):
    """A share as a whole percentage; never 0% or 100% unless exactly so."""
    if x is None or not np.isfinite(x):
        return "-"
    p = 100.0 * float(x)
    if 0 < p < 0.5:
        return "<1%"
    if 99.5 <= p < 100:
        return ">99%"
    return f"{p:.0f}%"


def _num(x, spec="g"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if np.isinf(x):
        return "inf"
    return format(float(x), spec)


def _epochs(x, horizon):
    """An epoch count; inf (later than the horizon) as '>horizon'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if np.isinf(x):
        return f">{_epochs(horizon, math.nan)}" if horizon is not None and np.isfinite(horizon) else "inf"
    x = float(x)
    return f"{x:.0f}" if x == round(x) else f"{x:.4g}"


def _with_interval(value, low, high, text):
    """'value [low, high]', or just 'value' when the bounds are unknown or all three read the same."""
    v, lo, hi = text(value), text(low), text(high)
    if lo == "-" and hi == "-":
        return v
    if v == lo == hi:
        return v
    return f"{v} [{lo}, {hi}]"


def _human_columns(summary, wide):
    """(key names, [(header, cells, priority)]) as the table and Markdown formats show them; the column of
    lowest priority is the first left out to fit WIDTH."""
    names, flat = _keys_and_stats(summary)
    recs = flat.to_dict("records")
    cols = [(n, [_key_text(r[n], n) for r in recs], math.inf) for n in names]

    def add(header, cell, priority):
        cols.append((header, [cell(r) for r in recs], priority))

    def pct_ci(r):
        rate = r["rate"]
        if rate is None or not np.isfinite(rate):
            return "-"
        return f"{_pct(rate)} [{_pct(r['rate_low']).rstrip('%')}, {_pct(r['rate_high']).rstrip('%')}]"

    def median(r):
        h = r["horizon"]
        value = math.inf if r["epochs_to_solve_censored"] else r["epochs_to_solve_median"]
        return _with_interval(value, r["epochs_to_solve_low"], r["epochs_to_solve_high"], lambda x: _epochs(x, h))

    def expected(x):
        if x is None or not np.isfinite(x):
            return _num(x)
        return f"{x:.0f}" if x >= 100 else f"{x:.3g}"

    def restarts(r):
        """'E @ t': the least expected epochs with restarts, restarting runs not solved after t epochs."""
        if wide:
            text = _with_interval(r["restart_epochs"], r["restart_epochs_low"], r["restart_epochs_high"], expected)
        else:
            text = expected(r["restart_epochs"])
        cutoff = r["restart_cutoff"]
        return text if cutoff is None or not np.isfinite(cutoff) else f"{text} @ {_epochs(cutoff, None)}"

    add("runs", lambda r: str(int(r["runs"])), 90)
    add("converged", pct_ci, 80)
    if wide:
        add("solved", lambda r: _pct(r["solved_at_horizon"]), 75)
    add("median epochs", median, 70)
    add("restart epochs", restarts, 60)
    if wide:
        def converged_only(r):
            if r["epochs_converged_median"] is None or not np.isfinite(r["epochs_converged_median"]):
                return "-"
            return (f"{r['epochs_converged_median']:.0f} [{r['epochs_converged_q1']:.0f}, "
                    f"{r['epochs_converged_q3']:.0f}]")
        add("converged epochs [IQR]", converged_only, 45)
    totals = {o: float(np.nansum(flat[f"share_{o}"])) for o in OUTCOMES if o != "converged"}
    shown = [o for o in totals if wide or totals[o] > 0]  # an outcome no run has is a column of 0%
    rank = {o: i for i, o in enumerate(sorted(shown, key=lambda o: totals[o]))}
    for o in shown:
        add(o, lambda r, o=o: _pct(r[f"share_{o}"]), 40 + rank[o])
    add("final MSE", lambda r: _num(r["final_mse_median"], ".2g"), 20)
    if wide:
        add("final loss", lambda r: _num(r["final_loss_median"], ".4g"), 10)
    return names, cols


def _width(cols):
    return sum(max(len(h), *(len(c) for c in cells)) for h, cells, _ in cols) + 2 * (len(cols) - 1)


def _fit(cols, width):
    """cols without the columns of lowest priority until the aligned table is at most `width` wide:
    (kept, headers left out)."""
    cols, left = list(cols), []
    while _width(cols) > width:
        drop = min(range(len(cols)), key=lambda i: cols[i][2])
        if not np.isfinite(cols[drop][2]):
            break  # only the keys are left
        left.append(cols.pop(drop)[0])
    return cols, left


def _human_rows(summary, wide=False, width=WIDTH):
    """Key names, header, rows of text cells and the headers left out, as the table and Markdown formats
    show them: all columns when wide, else those that fit `width` characters (None: no limit)."""
    names, cols = _human_columns(summary, wide)
    left = []
    if not wide and width is not None:
        cols, left = _fit(cols, width)
    header = [h for h, _, _ in cols]
    rows = [list(r) for r in zip(*(cells for _, cells, _ in cols))]
    return names, header, rows, left


def format_summary(summary, fmt="table", wide=False, width=WIDTH):
    """summarize()'s DataFrame as text: "table" (aligned, for people), "markdown" (a pipe table),
    "csv" (every column, plain numbers) or "json" (an array of one object per group, plain numbers,
    null for NaN and infinity). Every format ends with a newline.

    The table and Markdown show, per group: runs, converged (rate [95% interval]), median epochs to a
    solution over all runs [95% interval] ('>E': later than the horizon E), restart epochs ('E @ t':
    the least expected epochs with restarts, restarting after t epochs), the share of each outcome
    other than converged that occurs, and the median final MSE. The table fits `width` characters: the
    columns of least use are left out until it does (it says which, last); Markdown, which is not read
    in a terminal, keeps them all. wide: every column, intervals included, however wide."""
    if fmt not in FORMATS:
        raise SweepError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        names, flat = _keys_and_stats(summary)
        for n in names:
            if isinstance(flat[n].dtype, pd.CategoricalDtype):
                flat[n] = flat[n].astype(object)
        return flat.to_csv(index=False, lineterminator="\n")
    if fmt == "json":
        names, flat = _keys_and_stats(summary)
        records = [{k: _plain(v) for k, v in rec.items()} for rec in flat.to_dict("records")]
        if not records:
            return "[]\n"
        return "[\n" + ",\n".join("  " + json.dumps(r, allow_nan=False) for r in records) + "\n]\n"
    names, header, rows, left = _human_rows(summary, wide, width if fmt == "table" else None)
    n_keys = len(names)
    if fmt == "markdown":
        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
        sep = ["---" if i < n_keys else "---:" for i in range(len(header))]
        return "\n".join([line(header), "| " + " | ".join(sep) + " |", *(line(r) for r in rows)]) + "\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def aligned(cells):
        return "  ".join(c.ljust(w) if i < n_keys else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [aligned(header), aligned(["-" * w for w in widths]), *(aligned(r) for r in rows)]
    if left:
        note = f"(left out to fit {width} columns: {', '.join(left)}; --wide shows them)"
        lines += textwrap.wrap(note, width, break_on_hyphens=False) if width > 20 else [note]
    return "\n".join(lines) + "\n"

"""`sweep.summarize`: one row per group of runs, and `sweep summary`'s renderings.

``summarize(df, by=[...])`` groups a results DataFrame (as `sweep.load`
returns it) by parameter columns and gives, per group: the number of runs,
how many converged and the rate with its 95% Wilson score interval, the
median and quartiles of the epoch at which the converged runs converged,
the share of each outcome, and the median final loss. ``format_summary``
renders such a table as an aligned text table, Markdown, CSV or JSON.
"""
import json
import math

import numpy as np
import pandas as pd

from sweep.collect import OUTCOMES
from sweep.errors import SweepError
from sweep.params import NAMES as PARAMETER_COLUMNS

Z95 = 1.959963984540054  # two-sided 95% normal quantile

COLUMNS = ["runs", "converged", "rate", "rate_low", "rate_high", "epochs_median", "epochs_q1", "epochs_q3",
           *(f"share_{o}" for o in OUTCOMES), "final_loss_median"]
NEEDED = ["converged", "epoch_converged", "outcome", "final_loss"]
NOT_GROUPS = ("seed", "run_id")  # never a default group key
FORMATS = ("table", "markdown", "csv", "json")
ALL = "all"  # the label of the single group when there is nothing to group by


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


def default_by(df):
    """Every parameter column of df that takes more than one value (seed excluded), in column order."""
    out = []
    for name in df.columns:
        if name in PARAMETER_COLUMNS and name not in NOT_GROUPS and df[name].nunique(dropna=False) > 1:
            out.append(name)
    return out


def _resolve_by(df, by):
    if by is None:
        return default_by(df)
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


def summarize(df, by=None):
    """One row per group of runs, indexed by the group keys in sorted order.

    by: parameter column names (a list, or one comma-separated string);
    default: every parameter column that varies in df, except seed. With
    nothing to group by, the result is one row labelled ``"all"``.
    Categorical keys sort in category order; only groups that hold runs are
    listed.

    Columns: runs; converged (count) and rate, with rate_low/rate_high its
    95% Wilson interval; epochs_median, epochs_q1, epochs_q3 of
    epoch_converged over the converged runs (NaN when none converged);
    share_<outcome> for each outcome (they sum to 1); final_loss_median
    (a non-finite final loss counts as +inf).
    """
    by = _resolve_by(df, by)
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise SweepError(f"cannot summarize: the results have no {', '.join(missing)} column")

    converged = df["converged"].fillna(False).astype(bool).to_numpy()
    epochs = pd.to_numeric(df["epoch_converged"], errors="coerce").astype(float).to_numpy()
    final_loss = pd.to_numeric(df["final_loss"], errors="coerce").astype(float).to_numpy()
    outcome = df["outcome"].astype(object).to_numpy()
    data = {
        "converged": converged.astype(np.int64),
        "epochs": np.where(converged, epochs, np.nan),
        "final_loss": np.where(np.isfinite(final_loss), final_loss, np.inf),
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
    out["epochs_median"] = groups["epochs"].median()
    out["epochs_q1"] = groups["epochs"].quantile(0.25)
    out["epochs_q3"] = groups["epochs"].quantile(0.75)
    for o in OUTCOMES:
        out[f"share_{o}"] = groups[f"share_{o}"].mean()
    out["final_loss_median"] = groups["final_loss"].median()
    out = out[COLUMNS]
    if not by:
        out.index = pd.Index([ALL] * len(out), name="group")
        if out.empty:  # no runs at all: still one (empty) group
            out = pd.DataFrame([[0, 0] + [np.nan] * (len(COLUMNS) - 2)], columns=COLUMNS,
                               index=pd.Index([ALL], name="group"))
            out[["runs", "converged"]] = out[["runs", "converged"]].astype(np.int64)
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


def _key_text(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "NA"
    if isinstance(value, (np.floating, float)):
        return format(float(value), ".6g")
    if isinstance(value, (np.bool_, bool)):
        return str(bool(value)).lower()
    return str(value)


def _pct(x, digits=1):
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _num(x, spec="g"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if np.isinf(x):
        return "inf"
    return format(float(x), spec)


def _human_rows(summary):
    """Header and rows of text cells, as the table and Markdown formats show them."""
    names, flat = _keys_and_stats(summary)
    header = [*names, "runs", "rate (95% CI)", "epochs median [IQR]",
              *(o for o in OUTCOMES), "final loss median"]
    rows = []
    for rec in flat.to_dict("records"):
        rate = rec["rate"]
        if rate is None or not np.isfinite(rate):
            conv = "-"
        else:
            conv = f"{100 * rate:.1f}% [{100 * rec['rate_low']:.1f}, {100 * rec['rate_high']:.1f}]"
        if rec["epochs_median"] is None or not np.isfinite(rec["epochs_median"]):
            ep = "-"
        else:
            ep = f"{rec['epochs_median']:.0f} [{rec['epochs_q1']:.0f}, {rec['epochs_q3']:.0f}]"
        rows.append([*(_key_text(rec[n]) for n in names), str(int(rec["runs"])), conv, ep,
                     *(_pct(rec[f"share_{o}"]) for o in OUTCOMES), _num(rec["final_loss_median"], ".4g")])
    return names, header, rows


def format_summary(summary, fmt="table"):
    """summarize()'s DataFrame as text: "table" (aligned, for people), "markdown" (a pipe table),
    "csv" (every column, plain numbers) or "json" (an array of one object per group, plain numbers,
    null for NaN). Every format ends with a newline."""
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
    names, header, rows = _human_rows(summary)
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
    return "\n".join([aligned(header), aligned(["-" * w for w in widths]), *(aligned(r) for r in rows)]) + "\n"

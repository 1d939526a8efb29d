"""The curvature figure of a sweep with `diagnostics = true` (`sweep plot --curvature`, `sweep.plot(...,
curvature=True)`): three panels, one colour per learning rate.

1. Sharpness over training: each run's sharpness at its checkpoints (thin) and their median (bold), with
   the edge of stability, threshold / lr (dashed: 2 / lr for gradient descent), where it applies.
2. Phases: per learning rate, the shares of runs that converged without the loss ever rising (lazy), that
   converged after a loss spike (catapult) and that did not converge, against the median lr x lambda_0
   (the NTK's largest eigenvalue at the start), with Lewkowycz et al.'s (2020) boundaries 2 and 4.
3. Sharpness at the start and at the end against the learning rate, with the curve threshold / lr.

`phase_table` is the second panel's table, without matplotlib.
"""
import warnings

import numpy as np
import pandas as pd

from sweep.errors import SweepError
from sweep.plots import _join_title, _matplotlib, _require, _suptitle, finish, fmt_value, scale_colours

PHASES = ("lazy", "catapult", "not converged")
NEEDED = ("lr", "converged", "catapult", "lr_lambda0", "ntk_lambda0", "sharpness_init", "sharpness_final",
          "checkpoint_epochs", "checkpoint_sharpness")
PHASE_COLOURS = {"lazy": "#4c72b0", "catapult": "#dd8452", "not converged": "#c44e52"}


def _with_lr(df):
    if "sharpness_init" not in df or df["sharpness_init"].isna().all():
        raise SweepError("the curvature figure needs runs with diagnostics = true; these results have none "
                         "(set it in the grid, or pick them with --where \"diagnostics\")")
    _require(df, list(NEEDED), "curvature figure")
    df = df[df["lr"].notna() & df["lr_lambda0"].notna()]
    if len(df) == 0:
        raise SweepError("the curvature figure groups runs by lr, and no run with diagnostics has one lr for both "
                         "layers (per-layer rates: lr is null)")
    return df


def phase_of(df):
    """Each run's phase (`PHASES`): lazy (converged, the loss never above its initial value), catapult (the
    `catapult` column: the loss rose, then the run converged), not converged (diverged or not in time)."""
    converged = df["converged"].astype(bool).to_numpy()
    catapult = df["catapult"].fillna(False).astype(bool).to_numpy()
    return pd.Series(np.where(catapult, "catapult", np.where(converged, "lazy", "not converged")), index=df.index)


def phase_table(df):
    """Per learning rate: runs, the median lr_lambda0, the share of each phase, the median
    sharpness at the start and at the end (of the runs with a finite one)."""
    return _phases(_with_lr(df))


def _phases(df):
    """`phase_table` of rows `_with_lr` kept."""
    phase = phase_of(df)
    rows = []
    for lr, grp in df.groupby("lr", sort=True):
        shares = phase[grp.index].value_counts(normalize=True)
        rows.append({"lr": lr, "runs": len(grp), "lr_lambda0": grp["lr_lambda0"].median(),
                     **{p: float(shares.get(p, 0.0)) for p in PHASES},
                     "sharpness_init": grp["sharpness_init"].median(),
                     "sharpness_final": grp["sharpness_final"].median()})
    return pd.DataFrame(rows)


def edge(grp):
    """The edge of stability of a group of runs as a sharpness, threshold / lr; None where it does not apply
    or differs between the runs (adaptive optimizers, minibatches, several optimizers or momenta)."""
    from kernels.curvature import edge_threshold

    cols = [c for c in ("optimizer", "momentum", "batch_size") if c in grp]
    if grp["lr"].nunique() != 1 or any(grp[c].nunique(dropna=False) > 1 for c in cols):
        return None
    first = grp[cols].iloc[0] if cols else pd.Series(dtype=object)
    if int(first.get("batch_size", 0) or 0) != 0:
        return None
    threshold = edge_threshold(str(first.get("optimizer", "gd")), float(first.get("momentum", 0.0) or 0.0))
    return None if threshold is None else threshold / float(grp["lr"].iloc[0])


def _sharpness_panel(ax, df, colours):
    points, edges = [], []
    for lr, grp in df.groupby("lr", sort=True):
        colour = colours[lr]
        curves = []
        for epochs, sharp in zip(grp["checkpoint_epochs"], grp["checkpoint_sharpness"]):
            if epochs is None or sharp is None or not len(epochs):
                continue
            x, y = np.asarray(epochs, float), np.asarray(sharp, float)
            ax.plot(np.maximum(x, 0.5), y, color=colour, lw=0.5, alpha=0.35)
            curves.append(y)
            points.append(y[np.isfinite(y)])
        if curves and len({len(c) for c in curves}) == 1:
            with warnings.catch_warnings():  # 'All-NaN slice' where every run had stopped
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(np.vstack(curves), axis=0)
            ax.plot(np.maximum(np.asarray(grp["checkpoint_epochs"].iloc[0], float), 0.5), median, color=colour,
                    lw=2, label=f"lr {fmt_value(lr)}")
        line = edge(grp)
        if line is not None:
            ax.axhline(line, color=colour, ls="--", lw=1.2)
            edges.append(line)
    ax.set_xscale("log")
    ax.set_xlabel("state (updates made; 0 drawn at 0.5)")
    ax.set_ylabel("sharpness (largest Hessian eigenvalue)")
    ax.set_title("sharpness over training; dashed: the edge, threshold / lr")
    values = np.concatenate(points) if points else np.zeros(0)
    if values.size:
        lo = min(values.min(), min(edges, default=np.inf))
        hi = max(values.max(), max(edges, default=-np.inf))
        start = df["sharpness_init"].to_numpy(float)
        start = start[np.isfinite(start)]
        typical = max(max(edges, default=-np.inf), np.percentile(start, 95) if start.size else -np.inf)
        if np.isfinite(typical) and typical > 0 and (hi > 5 * typical or lo < -typical):
            lo, hi = max(lo, -0.5 * typical), min(hi, 3 * typical)  # runs that blew up leave the view
            ax.set_title(ax.get_title() + "\n(runs that blew up leave the view)", fontsize=10)
        pad = 0.1 * (hi - lo) if hi > lo else 0.1 * abs(hi) + 1e-12
        ax.set_ylim(lo - pad, hi + pad)
    n = df["lr"].nunique()
    ax.legend(fontsize=8 if n <= 8 else 6, loc="best", ncol=1 if n <= 8 else 2)


def _phase_panel(ax, table):
    x = table["lr_lambda0"].to_numpy(float)
    order = np.argsort(x)
    x = x[order]
    gaps = np.diff(x)
    width = 0.8 * (gaps[gaps > 0].min() if np.any(gaps > 0) else max(abs(x[0]), 1.0) * 0.2)
    bottom = np.zeros(len(x))
    for p in PHASES:
        share = table[p].to_numpy(float)[order]
        ax.bar(x, share, width=width, bottom=bottom, color=PHASE_COLOURS[p], label=p)
        bottom += share
    for boundary in (2.0, 4.0):
        ax.axvline(boundary, color="k", ls=":", lw=1)
    ax.set_xlim(x[0] - width, x[-1] + width)
    ax.set_ylim(0, 1)
    ax.set_xlabel("lr x lambda_0 (median of the runs at each lr)")
    ax.set_ylabel("share of runs")
    ax.set_title("phases; dotted: lr lambda_0 = 2 and 4 (Lewkowycz et al.)")
    ax.legend(fontsize=8, loc="best")


def _final_panel(ax, df, colours):
    lrs = np.array(sorted(df["lr"].unique()), float)
    for lr, grp in df.groupby("lr", sort=True):
        n = len(grp)
        jitter = lr * np.exp(np.linspace(-0.04, 0.04, n)) if n > 1 else np.array([lr])
        ax.plot(jitter, grp["sharpness_init"], "o", mfc="none", color="0.55", ms=4)
        ax.plot(jitter, grp["sharpness_final"], "o", color=colours[lr], ms=4)
    curve = [edge(grp) for _, grp in df.groupby("lr", sort=True)]
    if all(c is not None for c in curve):
        ax.plot(lrs, curve, "k--", lw=1, label="threshold / lr")
    ax.plot([], [], "o", mfc="none", color="0.55", label="at the start")
    ax.plot([], [], "o", color="0.2", label="at the end")
    ax.set_xscale("log")
    ax.set_yscale("log")
    finite = pd.concat([df["sharpness_init"], df["sharpness_final"]]).to_numpy(float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size:
        ax.set_ylim(finite.min() / 1.5, np.percentile(finite, 95) * 3)
    ax.set_xlabel("lr")
    ax.set_ylabel("sharpness")
    ax.set_title("sharpness at the start and at the end")
    ax.legend(fontsize=8, loc="best")


def plot_curvature(df, name, out_path, dpi=200):
    """Write the curvature figure of `df` (the rows of a sweep with diagnostics) to out_path; with
    out_path None, return the Figure unwritten."""
    _, Figure = _matplotlib()
    df = _with_lr(df)
    table = _phases(df)
    colours = scale_colours(df["lr"].unique())
    width = 16.5
    fig = Figure(figsize=(width, 5.2), layout="constrained")
    axes = fig.subplots(1, 3)
    _sharpness_panel(axes[0], df, colours)
    _phase_panel(axes[1], table)
    _final_panel(axes[2], df, colours)
    fig.suptitle(_join_title(_suptitle(df, name), width), fontsize=12)
    return finish(fig, out_path, dpi)

"""`sweep plot`: figures of a sweep (needs matplotlib, the optional extra ``plot``).

One figure, three rows of panels, one column per loss (mse, bce; only those in
the data):

1. convergence rate (%) over init_scale (x) x learning rate (y), a heatmap;
2. median epochs to converge over the same cells, counted over the runs that
   converged (a grey dash where none did; "n=3" under a median of fewer than
   10 converged runs), on a log colour scale;
3. loss curves from the checkpoints: median over seeds (line) and the
   25-75 % band, one line per init_scale (sequential colormap), at one
   learning rate: ``lr`` if given, else the learning rate with the highest
   convergence rate over the whole sweep.

Cells pool every run with that (loss, lr, init_scale): seeds, and any other
parameter the grid varies (the title says which). Heatmap cells are the grid
values, labelled with the actual values; an axis whose values are geometric
(equal ratios) says "log-spaced" in its label.

Loss curves: the x-axis is the checkpoint epoch on a log scale; epoch 0 (the
initial loss) is drawn at x = 0.5 and labelled "0". A run that stopped early
(``early_stop``) has NaN at its later checkpoints; it is held at its last
recorded loss there, so the median keeps counting every run.

The table functions (`convergence_table`, `epochs_table`, `count_table`,
`loss_curves`) are pure pandas/NumPy and need no matplotlib. The figures are
built on `matplotlib.figure.Figure` (rendered by Agg), never through pyplot,
so they neither need a display nor change the pyplot backend of a notebook.
"""
import math

import numpy as np
import pandas as pd

from kernels.vocab import LOSS_LABELS
from sweep.errors import SweepError
from sweep.params import NAMES as PARAMETER_NAMES

MISSING_MPL = "plotting needs matplotlib: pip install 'sweep[plot]' (or pip install matplotlib)"
LOSS_NAMES = LOSS_LABELS
AXES = ("loss", "lr", "init_scale")
FEW = 10                 # epochs heatmap: a cell whose median is of fewer converged runs shows "n=..."
ZERO_AT = 0.5            # where epoch 0 is drawn on the log x-axis of the loss curves


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise SweepError(MISSING_MPL) from None
    return matplotlib, Figure


# --------------------------------------------------------------------------- tables (no matplotlib)

def _require(df, columns, what):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SweepError(f"the {what} needs the column(s) {', '.join(missing)} in the results "
                         f"(one row per run, as sweep.load gives); they are missing")
    if len(df) == 0:
        raise SweepError(f"the {what} needs at least one run; the results are empty")


def losses_of(df):
    """The losses present, in category order (mse before bce)."""
    col = df["loss"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().unique())
        return [c for c in col.cat.categories if c in present]
    return sorted(col.dropna().unique(), key=lambda v: (list(LOSS_NAMES).index(v) if v in LOSS_NAMES else 99, v))


def _table(df, value, agg, what):
    _require(df, list(AXES) + [value], what)
    tables = {}
    lrs = sorted(df["lr"].unique())
    scales = sorted(df["init_scale"].unique())
    for loss in losses_of(df):
        sub = df[df["loss"] == loss]
        t = sub.groupby(["lr", "init_scale"], observed=True)[value].agg(agg).unstack("init_scale")
        t = t.reindex(index=lrs, columns=scales).astype(float)
        t.index.name, t.columns.name = "lr", "init_scale"
        tables[loss] = t
    return tables


def convergence_table(df):
    """{loss: DataFrame} of the fraction of runs converged (0..1), index lr, columns init_scale.

    Cells of the grid that have no run are NaN.
    """
    return _table(df.assign(converged=df["converged"].astype(float)) if "converged" in df else df,
                  "converged", "mean", "convergence heatmap")


def count_table(df):
    """{loss: DataFrame} of the number of runs per cell, index lr, columns init_scale (0 where none)."""
    _require(df, list(AXES), "heatmaps")
    return {k: t.fillna(0).astype(int) for k, t in _table(df.assign(_n=1), "_n", "sum", "heatmaps").items()}


def epochs_table(df):
    """{loss: DataFrame} of the median epoch_converged over the runs that converged (NaN where none did)."""
    _require(df, list(AXES) + ["epoch_converged"], "epochs heatmap")
    ep = df["epoch_converged"].astype("Float64").astype(float)
    if "converged" in df:
        ep = ep.where(df["converged"].astype(bool))
    return _table(df.assign(epoch_converged=ep), "epoch_converged", "median", "epochs heatmap")


def best_lr(df):
    """The learning rate with the highest convergence rate over the whole sweep (the smaller one on ties)."""
    _require(df, ["lr", "converged"], "choice of learning rate")
    rates = df.groupby("lr")["converged"].mean()
    return float(rates.index[np.argmax(rates.to_numpy())])


def _has_checkpoints(df):
    return ("checkpoint_epochs" in df and "checkpoint_loss" in df
            and any(e is not None and len(e) for e in df["checkpoint_epochs"]))


def loss_curves(df, lr=None):
    """The loss-curve data: ``(lr, {loss: {init_scale: DataFrame}})``.

    Each DataFrame is indexed by checkpoint epoch with columns q25, median,
    q75 and n (runs) of the loss over the runs at that (loss, lr,
    init_scale). ``lr=None`` takes `best_lr`. A run that stopped early is
    held at its last recorded loss.
    """
    _require(df, list(AXES) + ["checkpoint_epochs", "checkpoint_loss"], "loss-curve plot")
    if not _has_checkpoints(df):
        raise SweepError("the loss-curve plot needs checkpoints, and these runs recorded none: set "
                         "checkpoints = N (e.g. 10) in the grid file and run it again, or pass --no-curves")
    lrs = sorted(df["lr"].unique())
    if lr is None:
        lr = best_lr(df) if "converged" in df else lrs[len(lrs) // 2]
    else:
        match = [v for v in lrs if math.isclose(v, lr, rel_tol=1e-9)]
        if not match:
            raise SweepError(f"--lr {lr:g} is not a learning rate of this sweep; it has "
                             + ", ".join(f"{v:g}" for v in lrs))
        lr = match[0]
    out = {}
    sub_lr = df[np.isclose(df["lr"].to_numpy(dtype=float), lr, rtol=1e-9, atol=0)]
    for loss in losses_of(df):
        by_scale = {}
        sub = sub_lr[sub_lr["loss"] == loss]
        for scale, grp in sub.groupby("init_scale", sort=True):
            frames = []
            for epochs, losses in zip(grp["checkpoint_epochs"], grp["checkpoint_loss"]):
                if epochs is None or not len(epochs):
                    continue
                s = pd.Series(np.asarray(losses, dtype=float), index=np.asarray(epochs, dtype=np.int64))
                frames.append(s.ffill())
            if not frames:
                continue
            m = pd.concat(frames, axis=1)           # epochs x runs; runs with other epochs leave NaN
            m = m.sort_index().ffill()
            q = m.quantile([0.25, 0.5, 0.75], axis=1).T
            q.columns = ["q25", "median", "q75"]
            q["n"] = m.notna().sum(axis=1)
            q.index.name = "epoch"
            by_scale[float(scale)] = q
        out[loss] = by_scale
    return float(lr), out


# --------------------------------------------------------------------------- labels

def is_geometric(values):
    """True when there are >= 3 positive values with equal ratios between neighbours."""
    v = np.sort(np.asarray(list(values), dtype=float))
    if len(v) < 3 or (v <= 0).any():
        return False
    r = np.diff(np.log(v))
    return bool(np.allclose(r, r[0], rtol=1e-6, atol=0) and r[0] > 0)


def fmt_value(v):
    """A grid value, short: 0.032, 0.1, 0.32, 1, 3.2, 10, 32, 1e-04."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    a = abs(v)
    if a < 1e-3 or a >= 1e5:
        return f"{v:.1e}".replace("e-0", "e-").replace("e+0", "e")
    if a >= 1000:
        return f"{v:.0f}"
    short = f"{v:.2g}"
    return short if abs(float(short) - v) <= 0.02 * a else f"{v:.3g}"


def _axis_label(name, values):
    return name + (" (log-spaced)" if is_geometric(values) else "")


def _pooled(df):
    """Parameters besides loss, lr, init_scale and seed that vary in the sweep."""
    skip = set(AXES) | {"seed", "run_id"}
    return [p for p in PARAMETER_NAMES if p in df and p not in skip and p != "save_weights"
            and df[p].nunique(dropna=False) > 1]


def _runs_per_cell(df):
    n = df.groupby(list(AXES), observed=True).size()
    lo, hi = int(n.min()), int(n.max())
    unit = "seeds" if not _pooled(df) else "runs"
    return f"n = {lo} {unit} per cell" if lo == hi else f"n = {lo}-{hi} {unit} per cell"


def _text_colour(rgba):
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# --------------------------------------------------------------------------- panels

def _new_axes(n, height, axes):
    if axes is not None:
        axes = list(np.ravel(axes))
        return axes[0].figure, axes
    _, Figure = _matplotlib()
    fig = Figure(figsize=(4.6 * n + 1.2, height), layout="constrained")
    return fig, list(np.ravel(fig.subplots(1, n, squeeze=False)))


def _heatmap(ax, table, cmap, norm, fmt, counts=None, notes=None):
    data = table.to_numpy(dtype=float)
    masked = np.ma.masked_invalid(data)
    cmap = cmap.with_extremes(bad="#eeeeee")
    im = ax.imshow(masked, cmap=cmap, norm=norm, origin="lower", aspect="auto", interpolation="nearest")
    ny, nx = data.shape
    ax.set_xticks(range(nx), [fmt_value(v) for v in table.columns])
    ax.set_yticks(range(ny), [fmt_value(v) for v in table.index])
    ax.set_xticks(np.arange(-0.5, nx, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, ny, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(which="major", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    size = 9 if nx <= 8 else 7
    for i in range(ny):
        for j in range(nx):
            v = data[i, j]
            if np.isnan(v):
                empty = counts is not None and counts[i, j] == 0
                ax.text(j, i, "no runs" if empty else "–", ha="center", va="center", color="#888888",
                        fontsize=size - (1 if empty else 0))
            else:
                colour = _text_colour(cmap(norm(v)))
                note = notes[i][j] if notes is not None else ""
                if note:
                    ax.text(j, i, fmt(v), ha="center", va="bottom", fontsize=size, color=colour)
                    ax.text(j, i, note, ha="center", va="top", fontsize=size - 2, color=colour)
                else:
                    ax.text(j, i, fmt(v), ha="center", va="center", fontsize=size, color=colour)
    return im


def _panel_title(ax, what, loss):
    ax.set_title(f"{what}, loss = {LOSS_NAMES.get(loss, loss)}", fontsize=10)


def _label_heatmap(ax, df, first):
    ax.set_xlabel(_axis_label("initial weight scale", df["init_scale"].unique()))
    if first:
        ax.set_ylabel(_axis_label("learning rate", df["lr"].unique()))


def plot_convergence(df, axes=None, colorbar=True):
    """Heatmaps of the convergence rate (%), one panel per loss, on ``axes`` (or a new figure). Returns the figure."""
    import matplotlib as mpl

    tables = convergence_table(df)
    counts = count_table(df)
    fig, axes = _new_axes(len(tables), 0.45 * df["lr"].nunique() + 2.0, axes)
    norm = mpl.colors.Normalize(0, 100)
    cmap = mpl.colormaps["viridis"]
    im = None
    for k, (ax, (loss, t)) in enumerate(zip(axes, tables.items())):
        im = _heatmap(ax, t * 100, cmap, norm, lambda v: f"{v:.0f}", counts[loss].to_numpy())
        _panel_title(ax, "converged (%)", loss)
        _label_heatmap(ax, df, k == 0)
    if colorbar and im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.95, pad=0.02, aspect=12)
        cb.set_label("runs converged (%)")
    return fig


def plot_epochs(df, axes=None, colorbar=True):
    """Heatmaps of the median epochs to converge (converged runs), one panel per loss. Returns the figure."""
    import matplotlib as mpl

    tables = epochs_table(df)
    counts = count_table(df)
    n_conv = _table(df.assign(_c=df["converged"].astype(int)), "_c", "sum", "epochs heatmap") \
        if "converged" in df else None
    fig, axes = _new_axes(len(tables), 0.45 * df["lr"].nunique() + 2.0, axes)
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = (values.min(), values.max()) if len(values) else (1.0, 10.0)
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    norm = mpl.colors.LogNorm(lo, hi)
    cmap = mpl.colormaps["magma_r"]
    im = None
    for k, (ax, (loss, t)) in enumerate(zip(axes, tables.items())):
        notes = None
        if n_conv is not None:   # a median of a few runs says so: "n=3" under it
            c = n_conv[loss].to_numpy()
            notes = [[f"n={int(x)}" if 0 < x < FEW else "" for x in row] for row in c]
        im = _heatmap(ax, t.mask(t <= 0, lo), cmap, norm, lambda v: f"{v:,.0f}", counts[loss].to_numpy(), notes)
        _panel_title(ax, "median epochs to converge (converged runs)", loss)
        _label_heatmap(ax, df, k == 0)
    if colorbar and im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.95, pad=0.02, aspect=12)
        cb.set_label("epochs (converged runs)")
        ticks = [m * 10.0 ** p for p in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1)
                 for m in (1, 3) if lo <= m * 10.0 ** p <= hi]
        if len(ticks) >= 2:
            cb.set_ticks(ticks, labels=[f"{t:,.0f}" for t in ticks])
            cb.ax.minorticks_off()
    return fig


def plot_loss_curves(df, axes=None, lr=None, legend=True):
    """Loss against epoch per init_scale (median, 25-75 % band over seeds), one panel per loss. Returns the figure."""
    import matplotlib as mpl

    chosen = "" if lr is not None else " (best)"
    lr, curves = loss_curves(df, lr)
    fig, axes = _new_axes(len(curves), 3.6, axes)
    scales = sorted(df["init_scale"].unique())
    cmap = mpl.colormaps["plasma"]
    colours = {s: cmap(0.88 * i / max(len(scales) - 1, 1)) for i, s in enumerate(scales)}
    max_epoch = 1
    handles = {}
    for k, (ax, (loss, by_scale)) in enumerate(zip(axes, curves.items())):
        for scale, q in by_scale.items():
            x = np.where(q.index.to_numpy() == 0, ZERO_AT, q.index.to_numpy()).astype(float)
            max_epoch = max(max_epoch, int(q.index.max()))
            c = colours[scale]
            ax.fill_between(x, q["q25"], q["q75"], color=c, alpha=0.18, linewidth=0)
            (line,) = ax.plot(x, q["median"], color=c, linewidth=1.8, marker="o", markersize=2.5)
            handles[scale] = line
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [ZERO_AT] + [10.0 ** p for p in range(0, int(math.floor(math.log10(max_epoch))) + 1)]
        ax.set_xticks(ticks, ["0"] + [f"{int(t):,}" for t in ticks[1:]])
        ax.xaxis.set_minor_locator(mpl.ticker.FixedLocator(
            [m * t for t in ticks[1:] for m in range(2, 10) if m * t <= max_epoch * 1.25]))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set_xlim(ZERO_AT * 0.8, max_epoch * 1.25)
        ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
        ax.set_xlabel("epoch (log; 0 drawn at 0.5)")
        ax.set_ylabel(f"{LOSS_NAMES.get(loss, loss)} loss")
        ax.set_title(f"loss curves at lr = {fmt_value(lr)}{chosen}, loss = {LOSS_NAMES.get(loss, loss)}", fontsize=10)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    if legend and handles:
        order = sorted(handles)
        fig.legend([handles[s] for s in order], [fmt_value(s) for s in order], loc="outside right center",
                   title="init scale\n(median,\n25-75 % band)", fontsize=9, title_fontsize=9, frameon=False)
    return fig


# --------------------------------------------------------------------------- the whole figure

def _suptitle(df, name):
    parts = [f"sweep “{name}”"]
    consts = []
    for col, label in (("dataset", ""), ("hidden", "hidden"), ("epochs", "epochs")):
        if col in df and df[col].nunique() == 1:
            v = df[col].iloc[0]
            consts.append(f"{label} {v:,}" if label else str(v))
    if consts:
        parts.append(", ".join(consts))
    parts.append(f"{len(df):,} runs, {_runs_per_cell(df)}")
    pooled = _pooled(df)
    if pooled:
        parts.append("pooled over " + ", ".join(pooled))
    return parts


def _join_title(parts, width_in):
    """The title parts on as few lines as fit a figure ``width_in`` inches wide (12 pt: ~9 characters an inch)."""
    lines, line = [], ""
    for part in parts:
        candidate = f"{line} — {part}" if line else part
        if line and len(candidate) > 9 * width_in:
            lines.append(line)
            candidate = part
        line = candidate
    return "\n".join(lines + [line])


def plot_sweep(df, name, out_path, lr=None, curves=True, dpi=200):
    """Write one figure file with the three rows of panels; return its path.

    The format follows the file's extension (.png, .pdf, .svg...). ``lr``
    picks the learning rate of the loss curves (default: `best_lr`);
    ``curves=False`` leaves the loss-curve row out.
    """
    _matplotlib()
    _require(df, list(AXES), "plot")
    if curves and not _has_checkpoints(df):
        loss_curves(df, lr)  # raises the SweepError that says what is needed
    n = len(losses_of(df))
    n_lr = df["lr"].nunique()
    heat_h = 0.42 * n_lr + 1.5
    heights = [heat_h, heat_h] + ([3.8] if curves else [])
    _, Figure = _matplotlib()
    width = 5.4 * n + 1.6
    title = _join_title(_suptitle(df, name), width)
    fig = Figure(figsize=(width, sum(heights) + 0.3 + 0.3 * (title.count("\n") + 1)), layout="constrained")
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights, hspace=0.04)
    plot_convergence(df, axes=subfigs[0].subplots(1, n, squeeze=False))
    plot_epochs(df, axes=subfigs[1].subplots(1, n, squeeze=False))
    if curves:
        plot_loss_curves(df, axes=subfigs[2].subplots(1, n, squeeze=False), lr=lr)
    fig.suptitle(title, fontsize=12)
    if out_path is None:  # sweep.plot: the Figure itself, unwritten
        return fig
    fig.savefig(out_path, dpi=dpi)
    return out_path

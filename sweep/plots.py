"""`sweep plot`: figures of a sweep (needs matplotlib, the optional extra ``plot``).

One figure, four sections of panels, one column per loss (mse, bce; only
those in the data):

1. convergence rate (%) over init_scale (x) x learning rate (y), a heatmap;
2. median epochs to converge over the same cells, counted over the runs that
   converged (a grey dash where none did; "n=3" under a median of fewer than
   10 converged runs), on a log colour scale: a perceptual map over
   log(epochs) spanning the data's range with a margin (at least a decade,
   so that near values get near colours), ticks at plain numbers (50, 100,
   200, 500, 1,000), cell text black or white, whichever contrasts more;
3. the fraction of runs solved by epoch t (`sweep.survival.fraction_solved`
   of `sweep.summary.time_to_solution`: a run is solved at its
   epoch_converged; one never solved counts as unsolved up to its horizon),
   a step curve per init_scale that ends at the group's horizon (a dot
   marks it: the fraction solved there);
4. loss curves from the checkpoints: median over seeds (line) and the
   25-75 % band (light), one line per init_scale.

Sections 3 and 4 are drawn at one learning rate: ``lr`` if given, else the
learning rate with the highest convergence rate over the whole sweep. Their
lines are one per init_scale, the heatmaps' columns, in the colours of one
legend: a qualitative palette (tab10; more than ten scales sample turbo), so
that neighbouring scales differ in hue. One line per init_scale rather than
one per heatmap cell: a panel of 21 lines (7 scales x 3 learning rates)
cannot be read, and the learning rate is the heatmaps' other axis anyway.

Cells pool every run with that (loss, lr, init_scale): seeds, and any other
parameter the grid varies (the title says which). ``facet`` splits the
figure by one or two more columns (``"hidden"``, ``"hidden,momentum"``):
the first gives one row of panels per value in the line sections (3, 4) and
one group of heatmap rows per value (hidden 2, hidden 3, ...: the heatmaps
stay one row of panels, so the values can be compared down a column); the
second gives one column of panels per value in every section. The title
then no longer calls those columns pooled. Heatmap cells are the grid
values, labelled with the actual values; an axis whose values are geometric
(equal ratios) says "log-spaced" in its label.

Epoch axes (sections 3, 4) are logarithmic; epoch 0 (the initial loss) is
drawn at x = 0.5 and labelled "0". A run that stopped early
(``early_stop``) has NaN at its later checkpoints; it is held at its last
recorded loss there, so the median keeps counting every run.

The table functions (`convergence_table`, `epochs_table`, `count_table`,
`loss_curves`, `solved_curves`, `facet_columns`) are pure pandas/NumPy and
need no matplotlib. The figures are built on `matplotlib.figure.Figure`
(rendered by Agg), never through pyplot, so they neither need a display nor
change the pyplot backend of a notebook.
"""
import math
import warnings

import numpy as np
import pandas as pd

from kernels.vocab import LOSS_LABELS
from sweep.errors import SweepError
from sweep.params import NAMES as PARAMETER_NAMES

MISSING_MPL = "plotting needs matplotlib: pip install matplotlib (in a clone of sweep: pip install -e '.[plot]')"
LOSS_NAMES = LOSS_LABELS
AXES = ("loss", "lr", "init_scale")
NOT_FACETS = AXES + ("seed", "run_id")
FEW = 10                 # epochs heatmap: a cell whose median is of fewer converged runs shows "n=..."
ZERO_AT = 0.5            # where epoch 0 is drawn on the log x-axes
BAND_ALPHA = 0.1         # the loss curves' 25-75 % bands: light, so that seven overlapping ones stay readable
MIN_DECADES = 1.0        # the epochs colour scale spans at least this many decades...
MARGIN = 0.08            # ...and this share of its span beyond the data at each end


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


def values_of(df, col):
    """The values of a column present in df, in order (category order for categoricals)."""
    if col == "loss":
        return losses_of(df)
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        return [c for c in s.cat.categories if c in present]
    return sorted(s.dropna().unique())


def _table(df, value, agg, what, by=None, levels=None):
    """{loss: DataFrame} of agg(value) per cell: index lr (or (by, lr) with a row facet), columns init_scale.

    levels: {column: values} to reindex to (a facet's subset then has the whole figure's cells).
    """
    _require(df, list(AXES) + [value] + ([by] if by else []), what)
    levels = levels or {}
    lrs = levels.get("lr", sorted(df["lr"].unique()))
    scales = levels.get("init_scale", sorted(df["init_scale"].unique()))
    keys = ["lr"]
    index = pd.Index(lrs, name="lr")
    if by:
        keys = [by, "lr"]
        index = pd.MultiIndex.from_product([levels.get(by, values_of(df, by)), lrs], names=keys)
    tables = {}
    for loss in levels.get("loss", losses_of(df)):
        sub = df[df["loss"] == loss]
        t = sub.groupby(keys + ["init_scale"], observed=True)[value].agg(agg).unstack("init_scale")
        t = t.reindex(index=index, columns=scales).astype(float)
        t.columns.name = "init_scale"
        tables[loss] = t
    return tables


def convergence_table(df, by=None, levels=None):
    """{loss: DataFrame} of the fraction of runs converged (0..1), index lr, columns init_scale.

    Cells of the grid that have no run are NaN. ``by``: a row facet column;
    the index is then (by, lr).
    """
    return _table(df.assign(converged=df["converged"].astype(float)) if "converged" in df else df,
                  "converged", "mean", "convergence heatmap", by, levels)


def count_table(df, by=None, levels=None):
    """{loss: DataFrame} of the number of runs per cell, index lr, columns init_scale (0 where none)."""
    _require(df, list(AXES), "heatmaps")
    return {k: t.fillna(0).astype(int)
            for k, t in _table(df.assign(_n=1), "_n", "sum", "heatmaps", by, levels).items()}


def epochs_table(df, by=None, levels=None):
    """{loss: DataFrame} of the median epoch_converged over the runs that converged (NaN where none did)."""
    _require(df, list(AXES) + ["epoch_converged"], "epochs heatmap")
    ep = df["epoch_converged"].astype("Float64").astype(float)
    if "converged" in df:
        ep = ep.where(df["converged"].astype(bool))
    return _table(df.assign(epoch_converged=ep), "epoch_converged", "median", "epochs heatmap", by, levels)


def best_lr(df):
    """The learning rate with the highest convergence rate over the whole sweep (the smaller one on ties)."""
    _require(df, ["lr", "converged"], "choice of learning rate")
    rates = df.groupby("lr")["converged"].mean()
    return float(rates.index[np.argmax(rates.to_numpy())])


def choose_lr(df, lr=None):
    """The learning rate of the line sections: ``lr`` (a learning rate of df, else a SweepError), or
    `best_lr`."""
    lrs = sorted(df["lr"].unique())
    if lr is None:
        return float(best_lr(df) if "converged" in df else lrs[len(lrs) // 2])
    match = [v for v in lrs if math.isclose(v, lr, rel_tol=1e-9)]
    if not match:
        raise SweepError(f"--lr {lr:g} is not a learning rate of this sweep; it has "
                         + ", ".join(f"{v:g}" for v in lrs))
    return float(match[0])


def _at_lr(df, lr):
    return df[np.isclose(df["lr"].to_numpy(dtype=float), lr, rtol=1e-9, atol=0)]


def _has_checkpoints(df):
    return ("checkpoint_epochs" in df and "checkpoint_loss" in df
            and any(e is not None and len(e) for e in df["checkpoint_epochs"]))


def _quartile_curves(grp):
    """Quartiles over the runs of grp of the loss at each checkpoint epoch, or None without checkpoints.

    The epochs are the union of the runs' checkpoint epochs; a run's loss at an epoch is its loss at its
    own latest checkpoint up to it (NaN before its first), its last finite loss once it stopped (NaN).
    """
    runs = [(np.asarray(e, dtype=np.int64), np.asarray(v, dtype=float))
            for e, v in zip(grp["checkpoint_epochs"], grp["checkpoint_loss"]) if e is not None and len(e)]
    if not runs:
        return None
    epochs = np.unique(np.concatenate([e for e, _ in runs]))
    m = np.full((len(runs), len(epochs)), np.nan)
    for k, (e, v) in enumerate(runs):
        order = np.argsort(e, kind="stable")
        e, v = e[order], v[order]
        at = np.searchsorted(e, epochs, side="right") - 1  # the run's latest checkpoint <= each epoch
        m[k] = np.where(at >= 0, v[np.maximum(at, 0)], np.nan)
    # held at the last finite loss: forward-fill along the epochs
    idx = np.where(np.isnan(m), 0, np.arange(m.shape[1]))
    np.maximum.accumulate(idx, axis=1, out=idx)
    m = np.take_along_axis(m, idx, axis=1)
    n = np.sum(~np.isnan(m), axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no run reached: NaN quartiles
        q = np.nanquantile(m, [0.25, 0.5, 0.75], axis=0)
    out = pd.DataFrame({"q25": q[0], "median": q[1], "q75": q[2], "n": n},
                       index=pd.Index(epochs, name="epoch"))
    return out


def _by_scale(df, lr, one):
    """{loss: {init_scale: one(group)}} over the runs of df at lr; groups where `one` gives None are left out."""
    out = {}
    sub_lr = _at_lr(df, lr)
    for loss in losses_of(df):
        by_scale = {}
        for scale, grp in sub_lr[sub_lr["loss"] == loss].groupby("init_scale", sort=True):
            value = one(grp)
            if value is not None:
                by_scale[float(scale)] = value
        out[loss] = by_scale
    return out


def loss_curves(df, lr=None):
    """The loss-curve data: ``(lr, {loss: {init_scale: DataFrame}})``.

    Each DataFrame is indexed by checkpoint epoch with columns q25, median,
    q75 and n (runs) of the loss over the runs at that (loss, lr,
    init_scale). ``lr=None`` takes `best_lr`. A run that stopped early is
    held at its last recorded loss.
    """
    _require_checkpoints(df)
    lr = choose_lr(df, lr)
    return lr, _by_scale(df, lr, _quartile_curves)


def _require_checkpoints(df):
    _require(df, list(AXES) + ["checkpoint_epochs", "checkpoint_loss"], "loss-curve plot")
    if not _has_checkpoints(df):
        raise SweepError("the loss-curve plot needs checkpoints, and these runs recorded none: set "
                         "checkpoints = N (e.g. 32) in the grid file and run it again, or pass --no-curves")


def _solved(grp):
    from sweep import survival
    from sweep.summary import time_to_solution

    return survival.fraction_solved(*time_to_solution(grp))


def solved_curves(df, lr=None):
    """The fraction-solved data: ``(lr, {loss: {init_scale: (t, F)}})``.

    (t, F) is `sweep.survival.fraction_solved` of `sweep.summary.time_to_solution` of the runs at that
    (loss, lr, init_scale): F[i] the fraction solved by epoch t[i], a step curve ending at the group's
    horizon. ``lr=None`` takes `best_lr`.
    """
    _require(df, list(AXES) + ["epoch_converged", "epochs_run", "epochs", "diverged"], "fraction-solved plot")
    lr = choose_lr(df, lr)
    return lr, _by_scale(df, lr, _solved)


def facet_columns(df, facet):
    """The facet columns, validated: () for None or "", else a tuple of one or two parameter columns.

    facet: "COL", "ROW,COL" or a sequence of names. A column that is not a
    parameter of df, or is already an axis of every panel (loss, lr,
    init_scale) or seed, is a SweepError naming the columns that could be used.
    """
    if facet is None:
        return ()
    names = facet.split(",") if isinstance(facet, str) else list(facet)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        return ()
    shown = ",".join(names)
    usable = [p for p in PARAMETER_NAMES if p in df and p not in NOT_FACETS]
    varying = [p for p in usable if df[p].nunique(dropna=False) > 1]
    hint = (f"facet by a parameter that varies here: {', '.join(varying)}" if varying else
            "no parameter besides loss, lr, init_scale and seed varies in these results")
    for n in names:
        if n in AXES:
            raise SweepError(f"--facet {shown}: {n} is already an axis of every panel; {hint}")
        if n not in usable:
            raise SweepError(f"--facet {shown}: {n!r} is not a parameter column to facet by; {hint}")
    if len(names) > 2:
        raise SweepError(f"--facet {shown}: at most two columns (rows,columns), got {len(names)}")
    if len(set(names)) != len(names):
        raise SweepError(f"--facet {shown}: the same column twice")
    return tuple(names)


# --------------------------------------------------------------------------- labels

def is_geometric(values):
    """True when there are >= 3 positive values with equal ratios between neighbours."""
    v = np.sort(np.asarray(list(values), dtype=float))
    if len(v) < 3 or (v <= 0).any():
        return False
    r = np.diff(np.log(v))
    return bool(np.allclose(r, r[0], rtol=1e-6, atol=0) and r[0] > 0)


def fmt_value(v):
    """A grid value, short: 0.032, 0.1, 0.32, 1, 3.2, 10, 32, 1e-04; a text or a flag as it is."""
    if isinstance(v, (str, bool, np.bool_)):
        return str(v)
    if isinstance(v, (tuple, list, np.ndarray)):  # an explicit checkpoint list
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
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


def fmt_number(v):
    """A plain number for a tick: 50, 100, 1,000, 0.5 (never 1.52×10²)."""
    if v >= 1 and float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.3g}" if v >= 1 else f"{v:.2g}"


def percent_format(values):
    """A formatter of the percentages `values`: whole numbers when they all are (100 seeds a cell), else
    one decimal (71.5 of 200 seeds); never "100" or "0" for a value that is not exactly that."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    digits = 0 if np.allclose(v, np.round(v), rtol=0, atol=1e-9) else 1
    step = 10.0 ** -digits

    def fmt(x):
        if 100 - step / 2 <= x < 100:
            return f">{100 - step:.{digits}f}"
        if 0 < x < step / 2:
            return f"<{step:.{digits}f}"
        return f"{x:.{digits}f}"

    return fmt


def _axis_label(name, values):
    return name + (" (log-spaced)" if is_geometric(values) else "")


def _pooled(df, facets=()):
    """Parameters besides loss, lr, init_scale, seed and the facets that vary within a cell (lr_hidden that
    follows lr, or beta1 that is null for gradient descent and set for Adam in facets by optimizer, do not)."""
    skip = set(AXES) | {"seed", "run_id"} | set(facets)
    varying = [p for p in PARAMETER_NAMES if p in df and p not in skip and p != "save_weights"
               and df[p].nunique(dropna=False) > 1]
    if not varying:
        return []
    within = df.groupby(list(AXES) + list(facets), observed=True)[varying].nunique(dropna=False).max()
    return [p for p in varying if within[p] > 1]


def _runs_per_cell(df, facets=()):
    n = df.groupby(list(AXES) + list(facets), observed=True).size()
    lo, hi = int(n.min()), int(n.max())
    unit = "seeds" if not _pooled(df, facets) else "runs"
    return f"n = {lo} {unit} per cell" if lo == hi else f"n = {lo}-{hi} {unit} per cell"


def _luminance(rgba):
    """WCAG relative luminance of an sRGB colour."""
    c = np.asarray(rgba[:3], dtype=float)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def _text_colour(rgba):
    """Black or white, whichever has the higher contrast ratio against rgba."""
    lum = _luminance(rgba)
    return "black" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "white"


def scale_colours(scales):
    """{scale: RGBA}: tab10 in order for up to ten scales (neighbours differ in hue), else turbo sampled evenly."""
    import matplotlib as mpl

    scales = sorted(scales)
    n = len(scales)
    if n <= 10:
        cmap = mpl.colormaps["tab10"]
        return {s: cmap(i) for i, s in enumerate(scales)}
    cmap = mpl.colormaps["turbo"]
    return {s: cmap(0.05 + 0.9 * i / (n - 1)) for i, s in enumerate(scales)}


def epochs_range(values):
    """(lo, hi) of the epochs colour scale: the data's range, widened to MIN_DECADES about its middle
    when narrower, and MARGIN of the span beyond it at each end (log scale)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return 10.0, 1000.0
    a, b = math.log10(v.min()), math.log10(v.max())
    if b - a < MIN_DECADES:
        mid = (a + b) / 2
        a, b = mid - MIN_DECADES / 2, mid + MIN_DECADES / 2
    pad = MARGIN * (b - a)
    return 10.0 ** (a - pad), 10.0 ** (b + pad)


def log_ticks(lo, hi, most=8):
    """Ticks at plain numbers in [lo, hi] for a log scale: 1-2-5 steps (10, 20, 50, 100...) when they
    are at most `most`, else 1-3 or powers of ten; finer (1, 1.5, 2, 3, 5, 7) when fewer than three."""
    first, last = int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi)))

    def at(mults):
        return [m * 10.0 ** p for p in range(first, last + 1) for m in mults if lo <= m * 10.0 ** p <= hi]

    for mults in ((1, 2, 5), (1, 3), (1,)):
        ticks = at(mults)
        if len(ticks) <= most:
            break
    if len(ticks) < 3:
        ticks = at((1, 1.5, 2, 3, 5, 7))
    return [float(f"{t:.3g}") for t in ticks]


# --------------------------------------------------------------------------- layout

class _Layout:
    """What every section needs: the facets, their values, the losses, the grid's lr and init_scale values,
    and the learning rate of the line sections."""

    def __init__(self, df, facets=(), lr=None, need_lr=True):
        self.df = df
        self.facets = tuple(facets)
        self.row = self.facets[0] if self.facets else None
        self.col = self.facets[1] if len(self.facets) > 1 else None
        self.rows = values_of(df, self.row) if self.row else [None]
        self.cols = values_of(df, self.col) if self.col else [None]
        self.losses = losses_of(df)
        self.lrs = sorted(df["lr"].unique())
        self.scales = sorted(df["init_scale"].unique())
        self.lr = choose_lr(df, lr) if need_lr else None
        self.chosen = "" if lr is not None or len(self.lrs) == 1 else " (best)"
        self.levels = {"lr": self.lrs, "init_scale": self.scales, "loss": self.losses}
        if self.row:
            self.levels[self.row] = self.rows

    def panels(self):
        """The columns of panels: (column facet value, loss)."""
        return [(c, loss) for c in self.cols for loss in self.losses]

    def cell(self, r=None, c=None):
        sub = self.df
        if self.row is not None and r is not None:
            sub = sub[sub[self.row] == r]
        if self.col is not None and c is not None:
            sub = sub[sub[self.col] == c]
        return sub

    def heat_rows(self):
        return len(self.rows) * len(self.lrs)


def _loss_name(loss):
    return LOSS_NAMES.get(loss, loss)


def _panel_name(layout, c, loss):
    return (f"{layout.col} = {fmt_value(c)}, " if layout.col else "") + f"loss = {_loss_name(loss)}"


# --------------------------------------------------------------------------- panels

def _new_axes(n, height, axes):
    if axes is not None:
        axes = list(np.ravel(axes))
        return axes[0].figure, axes
    _, Figure = _matplotlib()
    fig = Figure(figsize=(4.6 * n + 1.2, height), layout="constrained")
    return fig, list(np.ravel(fig.subplots(1, n, squeeze=False)))


def _heatmap(ax, table, cmap, norm, fmt, counts=None, notes=None, row_labels=None, groups=1):
    data = table.to_numpy(dtype=float)
    masked = np.ma.masked_invalid(data)
    cmap = cmap.with_extremes(bad="#eeeeee")
    im = ax.imshow(masked, cmap=cmap, norm=norm, origin="lower", aspect="auto", interpolation="nearest")
    ny, nx = data.shape
    ax.set_xticks(range(nx), [fmt_value(v) for v in table.columns])
    ax.set_yticks(range(ny), row_labels if row_labels is not None else [fmt_value(v) for v in table.index])
    ax.set_xticks(np.arange(-0.5, nx, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, ny, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    if groups > 1:  # a row facet's groups of lr rows: a wider gap between groups
        for y in np.arange(ny // groups, ny, ny // groups) - 0.5:
            ax.axhline(y, color="white", linewidth=5)
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


def _heat_rows(layout):
    """(tick labels, y label, groups) of the heatmaps' rows: lr values, or (row facet value, lr)."""
    lr_label = _axis_label("learning rate", layout.lrs)
    if not layout.row:
        return [fmt_value(v) for v in layout.lrs], lr_label, 1
    if len(layout.lrs) == 1:
        return ([fmt_value(r) for r in layout.rows], f"{layout.row} (lr = {fmt_value(layout.lrs[0])})", 1)
    return ([f"{fmt_value(r)} | {fmt_value(v)}" for r in layout.rows for v in layout.lrs],
            f"{layout.row} | {lr_label}", len(layout.rows))


def _heatmap_section(fig, axes, layout, kind, colorbar=True):
    """One row of heatmaps, a panel per (column facet value, loss); kind "converged" or "epochs"."""
    import matplotlib as mpl

    labels, ylabel, groups = _heat_rows(layout)
    tables, counts, notes = {}, {}, {}
    for c in layout.cols:
        sub = layout.cell(c=c)
        n = count_table(sub, layout.row, layout.levels)
        if kind == "converged":
            t = convergence_table(sub, layout.row, layout.levels)
        else:
            t = epochs_table(sub, layout.row, layout.levels)
            conv = _table(sub.assign(_c=sub["converged"].astype(int)), "_c", "sum", "epochs heatmap", layout.row,
                          layout.levels) if "converged" in sub else None
        for loss in layout.losses:
            tables[c, loss], counts[c, loss] = t[loss], n[loss].to_numpy()
            if kind == "epochs" and conv is not None:  # a median of a few runs says so: "n=3" under it
                notes[c, loss] = [[f"n={int(x)}" if 0 < x < FEW else "" for x in row]
                                  for row in conv[loss].fillna(0).to_numpy()]
    if kind == "converged":
        norm, cmap = mpl.colors.Normalize(0, 100), mpl.colormaps["viridis"]
        what, bar = "converged (%)", "runs converged (%)"
        fmt = percent_format(np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()]) * 100)
    else:
        values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
        lo, hi = epochs_range(values)
        norm = mpl.colors.LogNorm(lo, hi)
        cmap = mpl.colors.ListedColormap(mpl.colormaps["magma_r"](np.linspace(0.0, 0.92, 256)), name="epochs")
        what, bar = "median epochs to converge (converged runs)", "epochs (converged runs)"
        fmt = lambda v: f"{v:,.0f}"  # noqa: E731
    im = None
    for k, (ax, (c, loss)) in enumerate(zip(axes, layout.panels())):
        t = tables[c, loss]
        if kind == "converged":
            t = t * 100
        else:
            t = t.mask(t <= 0, norm.vmin)
        im = _heatmap(ax, t, cmap, norm, fmt, counts[c, loss], notes.get((c, loss)), labels, groups)
        ax.set_title(_panel_name(layout, c, loss) if layout.facets else f"{what}, {_panel_name(layout, c, loss)}",
                     fontsize=10)
        ax.set_xlabel(_axis_label("initial weight scale", layout.scales))
        if k == 0:
            ax.set_ylabel(ylabel)
    if layout.facets:
        fig.suptitle(what, fontsize=10)
    if colorbar and im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.95, pad=0.02, aspect=12)
        cb.set_label(bar)
        if kind == "epochs":
            ticks = log_ticks(norm.vmin, norm.vmax)
            cb.set_ticks(ticks, labels=[fmt_number(t) for t in ticks])
            cb.ax.minorticks_off()
    return fig


def _epoch_axis(ax, max_epoch, label=True):
    import matplotlib as mpl

    ax.set_xscale("log")
    ticks = [ZERO_AT] + [10.0 ** p for p in range(0, int(math.floor(math.log10(max(max_epoch, 1)))) + 1)]
    ax.set_xticks(ticks, ["0"] + [f"{int(t):,}" for t in ticks[1:]])
    ax.xaxis.set_minor_locator(mpl.ticker.FixedLocator(
        [m * t for t in ticks[1:] for m in range(2, 10) if m * t <= max_epoch * 1.25]))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_xlim(ZERO_AT * 0.8, max_epoch * 1.25)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    if label:
        ax.set_xlabel("epoch (log; 0 drawn at 0.5)")
    else:
        ax.tick_params(labelbottom=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _loss_axis(ax, lo, hi):
    """Log y limits [lo, hi]; under 1.5 decades, ticks at plain numbers (0.1, 0.2, 0.3, 0.5), not 3×10⁻¹."""
    import matplotlib as mpl

    ax.set_ylim(lo, hi)
    if math.log10(hi / lo) < 1.5:
        ticks = log_ticks(lo, hi, most=6)
        ax.yaxis.set_major_locator(mpl.ticker.FixedLocator(ticks))
        ax.yaxis.set_major_formatter(mpl.ticker.FixedFormatter([f"{t:g}" for t in ticks]))
        ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())


def _x(epochs):
    epochs = np.asarray(epochs, dtype=float)
    return np.where(epochs == 0, ZERO_AT, epochs)


def _draw_solved(ax, by_scale, colours):
    """Step curves of the fraction solved (%), one per init_scale, each ending at its horizon (a dot)."""
    handles = {}
    for scale, (t, F) in by_scale.items():
        if not len(t):
            continue
        if t[0] > 0:  # nothing solved before the first time: the curve starts at 0 % from epoch 0
            t, F = np.concatenate([[0.0], t]), np.concatenate([[0.0], F])
        (line,) = ax.plot(_x(t), 100 * F, drawstyle="steps-post", color=colours[scale], linewidth=1.8,
                          label=fmt_value(scale),
                          marker="o", markevery=[len(t) - 1], markersize=3.5)
        handles[scale] = line
    return handles


def _draw_curves(ax, by_scale, colours):
    """Median loss (line) and 25-75 % band (light) per init_scale."""
    handles = {}
    for scale, q in by_scale.items():
        x = _x(q.index.to_numpy())
        c = colours[scale]
        ax.fill_between(x, q["q25"], q["q75"], color=c, alpha=BAND_ALPHA, linewidth=0)
        (line,) = ax.plot(x, q["median"], color=c, linewidth=1.8, label=fmt_value(scale))
        handles[scale] = line
    return handles


def _line_section(fig, grid, layout, kind, legend=True, colours=None):
    """Rows of line panels (one row per row facet value), a column per (column facet value, loss);
    kind "solved" or "curves". grid: the axes, rows x columns."""
    colours = colours or scale_colours(layout.scales)
    faceted = bool(layout.facets)
    max_epoch = 1
    data = {}
    for i, r in enumerate(layout.rows):
        for c in layout.cols:
            sub = layout.cell(r, c)
            if kind == "solved":
                got = _by_scale(sub, layout.lr, _solved) if len(sub) else {}
            else:
                got = _by_scale(sub, layout.lr, _quartile_curves) if len(sub) else {}
            for loss in layout.losses:
                data[r, c, loss] = got.get(loss, {})
                for v in data[r, c, loss].values():
                    last = v[0][-1] if kind == "solved" else v.index.max()
                    max_epoch = max(max_epoch, int(last))
    handles, ylims = {}, {}
    what = "runs solved by epoch" if kind == "solved" else "loss curves"
    for i, r in enumerate(layout.rows):
        for j, (c, loss) in enumerate(layout.panels()):
            ax = grid[i][j]
            by_scale = data[r, c, loss]
            if kind == "solved":
                handles.update(_draw_solved(ax, by_scale, colours))
                ax.set_ylim(-3, 103)
                ax.set_yticks([0, 25, 50, 75, 100])
                yname = "solved (%)"
            else:
                handles.update(_draw_curves(ax, by_scale, colours))
                ax.set_yscale("log")
                vals = np.concatenate([q[["q25", "median", "q75"]].to_numpy().ravel() for q in by_scale.values()]
                                      or [np.empty(0)])
                vals = vals[np.isfinite(vals) & (vals > 0)]
                if len(vals):
                    lo, hi = ylims.get(loss, (np.inf, 0))
                    ylims[loss] = (min(lo, vals.min()), max(hi, vals.max()))
                yname = f"{_loss_name(loss)} loss"
            if not by_scale:
                ax.text(0.5, 0.5, f"no runs at lr = {fmt_value(layout.lr)}", transform=ax.transAxes,
                        ha="center", va="center", color="#888888", fontsize=9)
            _epoch_axis(ax, max_epoch, label=i == len(layout.rows) - 1)
            if not faceted:
                ax.set_title(f"{what} at lr = {fmt_value(layout.lr)}{layout.chosen}, loss = {_loss_name(loss)}",
                             fontsize=10)
            elif i == 0:
                ax.set_title(_panel_name(layout, c, loss), fontsize=10)
            if j == 0 or (kind == "curves" and loss != layout.panels()[j - 1][1]):
                ax.set_ylabel(f"{layout.row} = {fmt_value(r)}\n{yname}" if layout.row and j == 0 else yname,
                              fontsize=10 if not faceted else 9)
    if kind == "curves":
        for i in range(len(layout.rows)):
            for j, (c, loss) in enumerate(layout.panels()):
                if loss in ylims:
                    lo, hi = ylims[loss]
                    _loss_axis(grid[i][j], lo / 1.3, hi * 1.3)
    if faceted and hasattr(fig, "suptitle"):
        fig.suptitle(f"{what} at lr = {fmt_value(layout.lr)}{layout.chosen}", fontsize=10)
    if legend and handles:
        order = sorted(handles)
        title = "init scale" + ("\n(median,\n25-75 % band)" if kind == "curves" else "\n(dot: horizon)")
        fig.legend([handles[s] for s in order], [fmt_value(s) for s in order], loc="outside right center",
                   title=title, fontsize=9, title_fontsize=9, frameon=False)
    return fig


# --------------------------------------------------------------------------- one section as its own figure

def plot_convergence(df, axes=None, colorbar=True):
    """Heatmaps of the convergence rate (%), one panel per loss, on ``axes`` (or a new figure). Returns the figure."""
    layout = _Layout(df, need_lr=False)
    convergence_table(df)  # says what is missing
    fig, axes = _new_axes(len(layout.losses), 0.45 * len(layout.lrs) + 2.0, axes)
    return _heatmap_section(fig, axes, layout, "converged", colorbar)


def plot_epochs(df, axes=None, colorbar=True):
    """Heatmaps of the median epochs to converge (converged runs), one panel per loss. Returns the figure."""
    layout = _Layout(df, need_lr=False)
    epochs_table(df)
    fig, axes = _new_axes(len(layout.losses), 0.45 * len(layout.lrs) + 2.0, axes)
    return _heatmap_section(fig, axes, layout, "epochs", colorbar)


def plot_loss_curves(df, axes=None, lr=None, legend=True):
    """Loss against epoch per init_scale (median, 25-75 % band over seeds), one panel per loss. Returns the figure."""
    _require_checkpoints(df)
    layout = _Layout(df, lr=lr)
    fig, axes = _new_axes(len(layout.losses), 3.6, axes)
    return _line_section(fig, [axes], layout, "curves", legend)


def plot_solved(df, axes=None, lr=None, legend=True):
    """The fraction of runs solved by epoch per init_scale (`solved_curves`), one panel per loss. Returns the
    figure."""
    _require(df, list(AXES) + ["epoch_converged", "epochs_run", "epochs", "diverged"], "fraction-solved plot")
    layout = _Layout(df, lr=lr)
    fig, axes = _new_axes(len(layout.losses), 3.2, axes)
    return _line_section(fig, [axes], layout, "solved", legend)


# --------------------------------------------------------------------------- the whole figure

def _suptitle(df, name, facets=()):
    parts = [f"sweep “{name}”"]
    consts = []
    for col, label in (("dataset", ""), ("hidden", "hidden"), ("epochs", "epochs"), ("lr", "lr")):
        if col in df and df[col].nunique() == 1:
            v = df[col].iloc[0]
            consts.append(f"{label} {fmt_value(v) if col == 'lr' else f'{v:,}'}" if label else str(v))
    if consts:
        parts.append(", ".join(consts))
    parts.append(f"{len(df):,} runs, {_runs_per_cell(df, facets)}")
    if facets:
        parts.append(f"rows: {facets[0]}" + (f", columns: {facets[1]}" if len(facets) > 1 else ""))
    pooled = _pooled(df, facets)
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


def plot_sweep(df, name, out_path, lr=None, curves=True, dpi=200, facet=None):
    """Write one figure file with the sections of panels; return its path (or, with ``out_path=None``, the
    Figure, unwritten).

    The format follows the file's extension (.png, .pdf, .svg...). ``lr``
    picks the learning rate of the line sections (default: `best_lr`);
    ``curves=False`` leaves the loss-curve section out; ``facet``: one or
    two columns ("hidden", "hidden,momentum" or a list) to split the figure
    by, rows then columns (`facet_columns`).
    """
    _matplotlib()
    _require(df, list(AXES), "plot")
    facets = facet_columns(df, facet)
    if curves:
        _require_checkpoints(df)
    _require(df, ["epoch_converged", "epochs_run", "epochs", "diverged"], "fraction-solved plot")
    layout = _Layout(df, facets, lr)  # checks lr
    n = len(layout.panels())
    n_rows = len(layout.rows)
    heat_h = 0.42 * layout.heat_rows() + 1.5
    if facets:
        line_h = 1.9 * n_rows + 0.7
        heights = [heat_h, heat_h, line_h] + ([line_h] if curves else [])
        width = (4.2 if n <= 3 else 3.5) * n + 1.8
    else:
        heights = [heat_h, heat_h, 3.2] + ([3.8] if curves else [])
        width = 5.4 * n + 1.6
    _, Figure = _matplotlib()
    title = _join_title(_suptitle(df, name, facets), width)
    fig = Figure(figsize=(width, sum(heights) + 0.3 + 0.3 * (title.count("\n") + 1)), layout="constrained")
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights, hspace=0.04)
    _heatmap_section(subfigs[0], list(subfigs[0].subplots(1, n, squeeze=False)[0]), layout, "converged")
    _heatmap_section(subfigs[1], list(subfigs[1].subplots(1, n, squeeze=False)[0]), layout, "epochs")
    colours = scale_colours(layout.scales)
    _line_section(subfigs[2], subfigs[2].subplots(n_rows, n, squeeze=False), layout, "solved", colours=colours)
    if curves:
        _line_section(subfigs[3], subfigs[3].subplots(n_rows, n, squeeze=False), layout, "curves",
                      colours=colours)
    fig.suptitle(title, fontsize=12)
    fig.sweep_sections = {"converged": subfigs[0], "epochs": subfigs[1], "solved": subfigs[2],
                          **({"curves": subfigs[3]} if curves else {})}
    return finish(fig, out_path, dpi)


def finish(fig, out_path, dpi):
    """The Figure itself with out_path None (sweep.plot: unwritten), else out_path, written at dpi."""
    if out_path is None:
        return fig
    try:
        fig.savefig(out_path, dpi=dpi)
    except OSError as exc:
        raise SweepError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return out_path

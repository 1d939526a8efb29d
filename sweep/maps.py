"""`sweep map`: a trainability map, one pixel per network (needs matplotlib, the optional extra ``plot``).

The picture of Sohl-Dickstein (2024), "The boundary of neural network
trainability is fractal": a sweep whose grid has two axes, typically
log-spaced (``lr_hidden`` x ``lr_output``, up to 4096 x 4096 values), and one
network per grid point. Each network is one pixel: x (columns) and y (rows,
origin at the bottom) are the sorted distinct values of the two columns, so
pixel (row i, column j) is the run with the i-th smallest y and the j-th
smallest x. A grid point without a run, or whose colour value is missing
(NaN), is drawn in a neutral grey, and the caption under the title says how
many there are.

Colour:

- ``trainability`` (the default): negative where the network trained
  (minus the sum over epochs of its loss normalised by the initial loss),
  positive where it diverged or got stuck (the sum of the inverse normalised
  losses). The paper's rank (CDF) stretch (`rank_stretch`) maps the
  negative values by their empirical CDF among the negative values onto
  [-1, 0) and the positive values likewise onto (0, 1], so that the detail
  of both sides spreads over the whole colour range, then a diverging map,
  blue trained and red not: -1 deep blue (the largest loss sum among the
  trained: the slowest to train), +1 deep red (the slowest to diverge, or
  stuck), both paler towards 0 (fast training, fast divergence);
- a true/false column (``converged``): two colours and a legend;
- any other numeric column: viridis with a colour bar, on a log scale when
  its values are positive and span more than three decades.

Axes are image coordinates labelled in the columns' units: a log-spaced
axis (positive values with equal ratios: `sweep.plots.is_geometric`) has ticks at powers of ten
(10^-3) and says "(log scale)"; any other axis has ticks at round values
(or at every value when there are at most ten).

``--dimension`` estimates the box-counting dimension of the boundary
between trained (trainability < 0, or a true/false column's true) and not
trained (`box_counting_dimension`, free of matplotlib). A cell is a 2 x 2
block of neighbouring pixels, the square between four pixel centres; a box
of size k is k x k cells (spanning pixels ik..(i+1)k, its border pixels
shared with the next box, so that boxes tile the plane between the pixel
centres). For k = 2, 4, 8, ... up to a quarter of the shorter side, N(k) is
the number of boxes holding pixels of both sides, and the dimension is the
slope of log N(k) against log(1/k), fitted by least squares over the sizes
from 2 up while N(k) >= 10 and k is at most 1/8 of the shorter side. A
straight boundary measures 1.00, noise 2.00 and the Koch snowflake 1.24
(log 4 / log 3 = 1.26) at 1024 x 1024 pixels (tests/test_maps.py); the
paper finds fractional values in between.

The image is built with NumPy from the columns (`grid_image`: the sorted
distinct values and each row's index among them, a flat index, never a
pivot of Python objects), turned in blocks of rows into a uint8 index into
a palette of 255 colours and grey (`colour_index`: one byte a pixel), and
drawn with `imshow` at a resolution that gives every grid point at least one
pixel of the output: a 4096 x 4096 map takes under 1 GB beyond its rows.
The figures are built on `matplotlib.figure.Figure` (Agg), never through
pyplot, as in `sweep.plots`.
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.errors import SweepError
from sweep.plots import MISSING_MPL, _matplotlib, fmt_value  # noqa: F401  (MISSING_MPL: the same message)
from sweep.plots import is_geometric as is_log_spaced  # sweep plot's test of a log-spaced axis

MAX_SIDE = 4096             # distinct values per axis: pixels per side
TRAINABILITY = "trainability"
NO_DATA = "#b0b0b0"         # a grid point without a run, or without a colour value
DIVERGING = "RdBu_r"        # trainability: -1 (trained) deep blue, +1 (diverged or stuck) deep red
SEQUENTIAL = "viridis"
BOOL_COLOURS = {True: "#2166ac", False: "#d6604d"}  # the blue and red of the diverging map's sides
LOG_COLOURS_ABOVE = 1e3     # a positive colour column spanning more than this ratio gets a log colour scale
MIN_BOXES = 10              # the dimension's fit: box sizes with at least this many boundary boxes...
MIN_BOXES_ACROSS = 8        # ...and at least this many boxes across the shorter side
MIN_FIT_SIZES = 3           # fewer box sizes than this in the fit range is an error
AX_INCHES = 6.0             # the map's longer side
MIN_WIDTH = 7.5             # the figure's narrowest (inches), for the title of a tall map
MIN_DPI = 150               # the map's resolution when it needs no more for one pixel per grid point
ROWS_PER_BLOCK = 256        # colouring: rows of the image turned into palette indices at a time
LEVELS = 255                # colours of a continuous map; palette index 255 is "no data"


# --------------------------------------------------------------------------- columns

def _is_bool(series):
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    return series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "boolean"


def _is_number(series):
    """Numeric, and not true/false."""
    dtype = series.dtype
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def numeric_columns(df):
    """The columns of df a map can use as an axis: numbers (not true/false)."""
    return [c for c in df.columns if isinstance(c, str) and _is_number(df[c])]


def _colour_columns(df):
    return [c for c in df.columns if isinstance(c, str) and (_is_number(df[c]) or _is_bool(df[c]))]


def check_columns(df, x, y, color):
    """A one-line SweepError for an axis or colour column that df lacks or that is not numeric.

    Only the dtypes are read, so df may have no rows (`map_frame` checks a results directory's empty
    schema before reading any data).
    """
    from sweep.params import suggest

    numeric = numeric_columns(df)
    shown = ", ".join(numeric) or "none"
    for option, col in (("--x", x), ("--y", y)):
        if not isinstance(col, str) or not col:
            raise SweepError(f"{option}: expected a column name, got {col!r}")
        if col not in df.columns:
            raise SweepError(f"{option} {col}: no such column{suggest(col, numeric)}; the numeric columns are {shown}")
        if not _is_number(df[col]):
            raise SweepError(f"{option} {col}: not a numeric column ({df[col].dtype}); a map's axes are numbers, "
                             f"the numeric columns are {shown}")
    if x == y:
        raise SweepError(f"--x and --y are both {x}: a map needs two different columns")
    if not isinstance(color, str) or not color:
        raise SweepError(f"--color: expected a column name, got {color!r}")
    colours = _colour_columns(df)
    if color not in df.columns:
        why = (" (results written before sweep recorded trainability lack it; colour by another column, "
               "e.g. --color final_loss or --color converged)") if color == TRAINABILITY else ""
        raise SweepError(f"--color {color}: no such column{suggest(color, colours)}{why}; the numeric and "
                         f"true/false columns are {', '.join(colours) or 'none'}")
    if color not in colours:
        raise SweepError(f"--color {color}: not a numeric or true/false column ({df[color].dtype}); a map colours "
                         f"by one of {', '.join(colours) or 'none'}")


def where_columns(where):
    """The column names a `--where` filter reads, in the order it names them (none for None)."""
    if where is None:
        return []
    from sweep import where as w

    def walk(node):
        if isinstance(node, w.Column):
            yield node.name
        elif isinstance(node, w.Compare):
            yield from walk(node.left)
            yield from walk(node.right)
        elif isinstance(node, w.IsIn):
            yield node.column.name
        elif isinstance(node, (w.And, w.Or)):
            for term in node.terms:
                yield from walk(term)
        elif isinstance(node, w.Not):
            yield from walk(node.term)

    return list(dict.fromkeys(walk(w.parse(where))))


def map_frame(path, x, y, color, where=None):
    """The rows of a results directory a map needs, filtered by ``where``: only the columns x, y, color and
    those the filter reads (`sweep.load` with a column selection: 3 float columns of 16.8 million rows are
    400 MB; all ~45, lists among them, would be several GB).

    The columns are checked against the results' schema before any part is read.
    """
    import pyarrow as pa

    from sweep import store
    from sweep.results import load, select

    layout = store.require_results_dir(path)
    found = store.read_manifest(layout)
    if found is None:
        raise SweepError(f"{path} is not a sweep results directory (no {store.MANIFEST} in it)")
    schema = found[1]
    empty = schema.empty_table().to_pandas()
    check_columns(empty, x, y, color)
    wanted = where_columns(where)
    unknown = [c for c in wanted if c not in schema.names]
    if unknown:
        select(empty, where)  # the filter's own message: unknown column, did you mean, the columns
    df = load(path, columns=list(dict.fromkeys([x, y, color, *wanted])))
    # what reading freed (run ids, pages: ~1 GB for 16.8 million runs) back to the system before the image
    pa.default_memory_pool().release_unused()
    if len(df) == 0:
        raise SweepError(f"{path} holds no runs yet; a map needs at least one")
    return select(df, where)


# --------------------------------------------------------------------------- the image (no matplotlib)

@dataclass
class MapImage:
    """The map as arrays: pixel (i, j) is the run with y = ys[i] and x = xs[j].

    values: (ny, nx) float64, the colour column (true/false as 1.0/0.0), NaN where there is no run or no
    value; filled: (ny, nx) bool, where there is a run. kind: "trainability" (the column of that name),
    "bool" or "number".
    """
    x: str
    y: str
    color: str
    kind: str
    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    filled: np.ndarray
    runs: int = 0

    @property
    def shape(self):
        return self.values.shape

    @property
    def no_run(self):
        """Grid points without a run."""
        return int(self.filled.size - np.count_nonzero(self.filled))

    @property
    def no_value(self):
        """Grid points with a run whose colour value is missing (NaN)."""
        return int(np.count_nonzero(np.isnan(self.values))) - self.no_run


def _axis_values(df, col, option):
    v = df[col].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(v)
    if bad.any():
        n = int(np.count_nonzero(bad))
        raise SweepError(f"{option} {col}: {n:,} row{'s' * (n != 1)} have no finite {col} (missing or infinite) "
                         f"and cannot be placed; leave them out with --where, e.g. --where \"{col} > 0\"")
    inverse, xs = pd.factorize(v, sort=True)  # a hash table: 2-5x faster than np.unique's inverse
    xs = np.asarray(xs, dtype=float)
    if len(xs) > MAX_SIDE:
        raise SweepError(f"{option} {col}: {len(xs):,} distinct values; a map takes at most {MAX_SIDE:,} per axis "
                         f"(one pixel each): filter with --where or map a coarser column")
    return xs, inverse.reshape(-1).astype(np.int64, copy=False)


def _colour_values(series):
    """The float64 values of a colour column: true/false as 1/0, missing as NaN."""
    if series.dtype == object:  # true/false with missing values, as Arrow gives them: True, False, None
        return np.array([np.nan if v is None or v is pd.NA else float(bool(v)) for v in series], dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _where_literal(value):
    """A value as a `--where` literal: 'bce', true, 0.1, 3."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def _duplicates(df, x, y, xs, ys, flat, counts, axes):
    """The SweepError for grid points with several rows: the first such point, how many more, and which
    columns tell its rows apart (the parameters of df that vary there, else the grid's other axes)."""
    from sweep.params import NAMES

    dup = np.flatnonzero(counts > 1)
    first = int(dup[0])
    i, j = divmod(first, len(xs))
    more = f" (and {len(dup) - 1:,} other grid point{'s' * (len(dup) != 2)} have several)" if len(dup) > 1 else ""
    rows = df.iloc[np.flatnonzero(flat == first)]
    varying = []
    for c in [c for c in NAMES if c in rows.columns and c not in (x, y)]:  # parameters, not outcomes
        try:
            if rows[c].nunique(dropna=False) > 1:
                varying.append(c)
        except TypeError:  # a list-valued parameter (checkpoints)
            continue
    others = [a for a in (axes or []) if a not in (x, y)]
    if varying:
        c = varying[0]
        hint = (f"they differ in {', '.join(varying[:5])}{', ...' if len(varying) > 5 else ''}: keep one value "
                f"with --where, e.g. --where \"{c} == {_where_literal(rows[c].iloc[0])}\"")
    elif others:
        hint = (f"the grid's other axes ({', '.join(others)}) vary there: keep one value of each with --where, "
                f"e.g. --where \"{others[0]} == ...\"")
    else:
        hint = "filter with --where or map columns that vary per point"
    return SweepError(f"{int(counts[first])} rows share {x}={xs[j]:.6g}, {y}={ys[i]:.6g}{more}; a map "
                      f"draws one run per point: {hint}")


def grid_image(df, x, y, color=TRAINABILITY, axes=None):
    """The `MapImage` of df: one pixel per (x, y) grid point, coloured by ``color``.

    x and y: numeric columns of at most `MAX_SIDE` distinct finite values each; every (x, y) pair at most
    once (else a SweepError naming the pair and what tells its rows apart: a column of df, or one of the
    grid's ``axes`` when df holds only the mapped columns). Built from each row's index among the sorted
    distinct values: memory of a few arrays of the rows' length, never a Python object per row.
    """
    check_columns(df, x, y, color)
    if len(df) == 0:
        raise SweepError("a map needs at least one run; the results are empty")
    xs, ix = _axis_values(df, x, "--x")
    ys, iy = _axis_values(df, y, "--y")
    nx, ny = len(xs), len(ys)
    flat = iy * nx
    flat += ix
    del ix, iy
    counts = np.bincount(flat, minlength=nx * ny)
    if counts.max() > 1:
        raise _duplicates(df, x, y, xs, ys, flat, counts, axes)
    filled = (counts > 0).reshape(ny, nx)
    del counts
    values = np.full(ny * nx, np.nan)
    series = df[color]
    values[flat] = _colour_values(series)
    kind = "bool" if _is_bool(series) else (TRAINABILITY if color == TRAINABILITY else "number")
    return MapImage(x, y, color, kind, xs, ys, values.reshape(ny, nx), filled, runs=len(df))


def rank_stretch(values):
    """The paper's rank (CDF) stretch of trainability values, onto [-1, 1]; NaN stays NaN.

    A negative value v maps to -(share of the negative values that are >= v): the most negative to -1,
    the one nearest zero to -(its ties' share), in [-1, 0). A positive value maps to the share of the
    positive values <= v: the largest to +1, in (0, 1]. Zero maps to 0. Equal values share a rank.
    One argsort (NaN sorts last), then the ranks of the tie runs in order: O(n log n), no per-value
    binary search (which is several times slower on 16.8 million values).
    """
    v = np.asarray(values, dtype=float)
    flat = v.reshape(-1)
    order = np.argsort(flat)
    order = order[:len(flat) - int(np.count_nonzero(np.isnan(flat)))]
    s = flat[order]  # sorted; overwritten below by the ranks, in place (memory: 16.8 million values)
    z0, z1 = int(np.searchsorted(s, 0.0, side="left")), int(np.searchsorted(s, 0.0, side="right"))
    index = np.int32 if len(s) < 2 ** 31 else np.int64
    if z0:  # negatives: the first index of each value's tie run counts the negatives below it
        neg = s[:z0]
        first = np.arange(z0, dtype=index)
        first[1:][neg[1:] == neg[:-1]] = 0
        np.maximum.accumulate(first, out=first)
        neg[:] = (first - z0) / z0
        del first
    s[z0:z1] = 0.0
    k = len(s) - z1
    if k:  # positives: the last index of each value's tie run counts the positives up to it
        pos = s[z1:]
        last = np.arange(k, dtype=index)
        last[:-1][pos[:-1] == pos[1:]] = k - 1
        last = np.minimum.accumulate(last[::-1])[::-1]
        pos[:] = (last + 1) / k
        del last
    out = np.full(flat.shape, np.nan)
    out[order] = s
    return out.reshape(v.shape)


def _tick_label(v):
    """A tick's number: 100 and 2500 as they are, else as `sweep.plots.fmt_value` writes a grid value."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e6 else fmt_value(v)


def _nice_step(span, most):
    step = 10.0 ** math.floor(math.log10(span / most)) if span > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if span / (m * step) <= most:
            return m * step
    return 10 * step


def axis_ticks(values, most=8):
    """(positions, labels, log) of an image axis whose pixel k is values[k] (sorted, distinct).

    Log-spaced values: ticks at the powers of ten in their range ("$10^{-3}$", every m-th when there are
    more than ``most``), at 1-2-5 multiples when fewer than two powers fall in it. Else every value when
    there are at most ten, or round values placed by linear interpolation between the pixels.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if is_log_spaced(v):
        lv = np.log10(v)
        per_pixel = (lv[-1] - lv[0]) / (n - 1)
        lo, hi = lv[0] - 1e-9, lv[-1] + 1e-9
        powers = list(range(math.ceil(lo), math.floor(hi) + 1))
        if len(powers) >= 2:
            every = math.ceil(len(powers) / most)
            powers = powers[::every]
            return [(p - lv[0]) / per_pixel for p in powers], [f"$10^{{{p}}}$" for p in powers], True
        ticks = [m * 10.0 ** p for p in range(math.floor(lo), math.ceil(hi) + 1) for m in (1, 2, 5)
                 if lo <= math.log10(m) + p <= hi]
        if len(ticks) >= 2:
            return [(math.log10(t) - lv[0]) / per_pixel for t in ticks], [_tick_label(t) for t in ticks], True
        return list(range(n)), [_tick_label(t) for t in v], True
    if n <= 10:
        return list(range(n)), [_tick_label(t) for t in v], False
    step = _nice_step(v[-1] - v[0], most - 1)
    ticks = np.arange(math.ceil(v[0] / step - 1e-9), math.floor(v[-1] / step + 1e-9) + 1) * step
    ticks = ticks[(ticks >= v[0] - 1e-9 * step) & (ticks <= v[-1] + 1e-9 * step)]
    return (list(np.interp(ticks, v, np.arange(n))), [_tick_label(0.0 if abs(t) < 1e-12 * step else t) for t in ticks],
            False)


# --------------------------------------------------------------------------- the box-counting dimension

@dataclass
class Dimension:
    """A box-counting dimension: the slope of log(count) against log(1/size) over the fit range.

    sizes: the box sizes k (pixels: 2, 4, 8, ...); counts: the boxes of that size holding both sides
    (`box_counts`);
    fit: (smallest, largest) box size fitted; fitted: a mask over sizes; r2: the fit's coefficient of
    determination; intercept: log(count) at k = 1 on the fitted line.
    """
    dimension: float
    sizes: np.ndarray
    counts: np.ndarray
    fit: tuple
    fitted: np.ndarray
    r2: float
    intercept: float

    def text(self, what="trained/not-trained"):
        """The one line `sweep map --dimension` prints."""
        lo, hi = self.fit
        return (f"box-counting dimension of the {what} boundary: {self.dimension:.2f} (fit over box sizes "
                f"{lo}-{hi} pixels, {int(np.count_nonzero(self.fitted))} sizes, R^2 {self.r2:.3f})")

    def counts_text(self):
        """The box counts by size, the fitted ones starred."""
        return ("boundary boxes by box size (pixels; * fitted): "
                + ", ".join(f"{k}: {c:,}{'*' if f else ''}" for k, c, f in zip(self.sizes, self.counts, self.fitted)))


def _pool2(a):
    """Any-pooling by 2 x 2; an odd side is padded with one row or column of False (no data)."""
    h, w = a.shape
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2)))
    return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).any(axis=(1, 3))


def box_counts(sign_image, smallest=2):
    """(sizes, counts): for k = 2, 4, 8, ... up to min(ny, nx) / 4, the number of boxes of k x k cells
    that hold pixels of both signs.

    sign_image: 2-D; True (or non-zero) is one side, False (or 0) the other, NaN no data (left out: a box
    counts when its pixels with data hold both sides). A cell is a 2 x 2 block of neighbouring pixels (the
    square between four pixel centres); a box of k x k cells spans pixels ik..(i+1)k, sharing its border
    pixels with the next box, so that boxes tile the plane between the pixel centres and a boundary that
    passes between two pixels lies in a box that holds both. (Disjoint blocks of k x k pixels would miss
    every crossing between two blocks: a tilted straight line then measures 0.88, not 1.) The boxes of
    size 2k are those of size k pooled 2 x 2; the last box of a row or column may be cut by the edge (it
    holds the cells there are: padding with no data, where cropping to a multiple of k would drop up to
    k - 1 cells and tilt the slope, 1.02 for a straight line). ``smallest=1`` also gives the count of
    boundary cells.
    """
    s = np.asarray(sign_image)
    if s.ndim != 2:
        raise SweepError(f"a sign image is 2-D; got an array of shape {s.shape}")
    if s.dtype == bool:
        one, other = s, ~s
    else:
        s = s.astype(float, copy=False)
        valid = ~np.isnan(s)
        one = valid & (s != 0)
        other = valid & (s == 0)

    def cells(a):  # any over each 2 x 2 block of neighbouring pixels
        return a[:-1, :-1] | a[1:, :-1] | a[:-1, 1:] | a[1:, 1:]

    sizes, counts = [], []
    if min(s.shape) < 2:
        return np.array(sizes, dtype=np.int64), np.array(counts, dtype=np.int64)
    one, other = cells(one), cells(other)
    k = 1
    while k <= min(s.shape) // 4:
        if k >= smallest:
            sizes.append(k)
            counts.append(int(np.count_nonzero(one & other)))
        one, other = _pool2(one), _pool2(other)
        k *= 2
    return np.array(sizes, dtype=np.int64), np.array(counts, dtype=np.int64)


def box_counting_dimension(sign_image, *, fit=None, min_count=MIN_BOXES):
    """The box-counting dimension of the boundary between the two sides of ``sign_image`` (`Dimension`).

    Box sizes k = 2, 4, ... up to min(ny, nx) / 4 (`box_counts`); the fit (np.polyfit of log count on
    log 1/k) runs over ``fit`` = (smallest, largest) box size, by default over the sizes from 2 up, as
    long as each has at least ``min_count`` boundary boxes and at least `MIN_BOXES_ACROSS` boxes fit across
    the shorter side (the largest scales, of a few boxes, say little about a boundary's dimension). Fewer
    than `MIN_FIT_SIZES` sizes (two with an explicit ``fit``) or no boundary is a SweepError.
    """
    s = np.asarray(sign_image)
    sizes, counts = box_counts(s)
    if len(counts) and counts[0] == 0:
        raise SweepError("no boundary to measure: no 2 x 2 block of pixels of the map holds both sides (one "
                         "side only, or the sides apart with no data between them)")
    if fit is None:
        limit = min(s.shape) // MIN_BOXES_ACROSS
        ok = (counts >= min_count) & (sizes <= limit)
        n = int(np.argmin(ok)) if not ok.all() else len(ok)  # the sizes from 2 up, while they qualify
        fitted = np.arange(len(sizes)) < n
        if n < MIN_FIT_SIZES:
            raise SweepError(f"a box-counting dimension needs at least {MIN_FIT_SIZES} box sizes (2, 4, 8 ... "
                             f"pixels) with >= {min_count} boundary boxes each and >= {MIN_BOXES_ACROSS} boxes "
                             f"across; this map ({s.shape[1]} x {s.shape[0]} pixels) has {n}: map a finer grid "
                             f"(at least {MIN_BOXES_ACROSS * 2 ** MIN_FIT_SIZES} points a side)")
    else:
        lo, hi = fit
        fitted = (sizes >= lo) & (sizes <= hi)
        if np.count_nonzero(fitted) < 2 or (counts[fitted] == 0).any():
            raise SweepError(f"fit range {lo}-{hi}: needs at least 2 of the box sizes "
                             f"{', '.join(map(str, sizes)) or 'none'} with boundary boxes")
    k, c = sizes[fitted].astype(float), counts[fitted].astype(float)
    xs, ys = -np.log(k), np.log(c)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = ys - (slope * xs + intercept)
    total = np.sum((ys - ys.mean()) ** 2)
    r2 = float(1 - np.sum(residual ** 2) / total) if total > 0 else float("nan")
    return Dimension(float(slope), sizes, counts, (int(k[0]), int(k[-1])), fitted, r2, float(intercept))


def sign_image(img):
    """The two sides of a `MapImage` for the dimension: trained (trainability < 0) or the true/false column;
    NaN where there is no data. Another numeric column is a SweepError."""
    if img.kind == TRAINABILITY:
        return np.where(np.isnan(img.values), np.nan, (img.values < 0).astype(float))
    if img.kind == "bool":
        return img.values
    raise SweepError(f"--dimension measures the boundary between trained and not trained: colour by "
                     f"{TRAINABILITY} (negative: trained) or a true/false column such as converged; {img.color} "
                     f"is neither (a threshold of it would be arbitrary)")


def boundary_name(img):
    """The boundary's name in the dimension's line: trained/not-trained, or COLUMN true/false."""
    return "trained/not-trained" if img.kind == TRAINABILITY else f"{img.color} true/false"


def dimension_of(img, fit=None):
    """`box_counting_dimension` of a `MapImage`'s two sides (`sign_image`)."""
    return box_counting_dimension(sign_image(img), fit=fit)


# --------------------------------------------------------------------------- drawing

def colour_index(img):
    """(uint8 index image (ny, nx), ListedColormap of its indices, ScalarMappable for a colour bar or None,
    legend entries or None).

    Each pixel is an index into a small palette: 255 levels of the colour map and the no-data grey (true,
    false and grey for a true/false column). A colour map has 256 levels anyway, and imshow of a 2-D uint8
    index with NoNorm costs a fraction of the memory of an RGBA image (one byte a pixel here; in Agg's
    resampling float32 pixels instead of float32 RGBA ones). Computed in blocks of rows.
    """
    import matplotlib as mpl

    ny, nx = img.shape
    index = np.empty((ny, nx), dtype=np.uint8)
    if img.kind == "bool":
        palette = mpl.colors.ListedColormap([BOOL_COLOURS[False], BOOL_COLOURS[True], NO_DATA])
        for r in range(0, ny, ROWS_PER_BLOCK):
            block = img.values[r:r + ROWS_PER_BLOCK]
            index[r:r + ROWS_PER_BLOCK] = np.where(np.isnan(block), 2, block != 0)
        return index, palette, None, [(BOOL_COLOURS[True], f"{img.color} = true"),
                                      (BOOL_COLOURS[False], f"{img.color} = false")]
    if img.kind == TRAINABILITY:
        data = rank_stretch(img.values)
        norm, cmap = mpl.colors.Normalize(-1, 1), mpl.colormaps[DIVERGING]
    else:
        data = img.values
        finite = data[np.isfinite(data)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        del finite
        if lo > 0 and hi / lo > LOG_COLOURS_ABOVE:
            norm = mpl.colors.LogNorm(lo, hi)
        else:
            norm = mpl.colors.Normalize(lo, hi if hi > lo else lo + 1)
        cmap = mpl.colormaps[SEQUENTIAL]
    for r in range(0, ny, ROWS_PER_BLOCK):
        block = np.ma.filled(norm(data[r:r + ROWS_PER_BLOCK]).astype(float), np.nan)
        with np.errstate(invalid="ignore"):
            level = np.clip(np.floor(block * LEVELS), 0, LEVELS - 1)
        index[r:r + ROWS_PER_BLOCK] = np.where(np.isnan(block), LEVELS, level)
    del data
    palette = mpl.colors.ListedColormap(
        np.vstack([cmap(np.linspace(0.5 / LEVELS, 1 - 0.5 / LEVELS, LEVELS)), mpl.colors.to_rgba(NO_DATA)]))
    return index, palette, mpl.cm.ScalarMappable(norm=norm, cmap=cmap.with_extremes(bad=NO_DATA)), None


def auto_dpi(img, dpi=None):
    """The resolution: ``dpi``, else the least (>= `MIN_DPI`) that gives every grid point a pixel."""
    if dpi is not None:
        return dpi
    w, h = _axes_inches(img)
    ny, nx = img.shape
    return max(MIN_DPI, math.ceil(max(nx / w, ny / h) * 1.01))


def _axes_inches(img):
    ny, nx = img.shape
    ratio = min(4.0, max(0.25, ny / nx))
    return (AX_INCHES, AX_INCHES * ratio) if ratio <= 1 else (AX_INCHES / ratio, AX_INCHES)


def caption(img):
    """The title's second line: the grid, the runs, and what grey means when there is any."""
    ny, nx = img.shape
    parts = [f"{nx:,} x {ny:,} grid points, {img.runs:,} runs"]
    grey = []
    if img.no_run:
        grey.append(f"{img.no_run:,} point{'s' * (img.no_run != 1)} without a run")
    if img.no_value:
        grey.append(f"{img.no_value:,} without a {img.color} value")
    if grey:
        parts.append("grey: no data (" + ", ".join(grey) + ")")
    return "; ".join(parts)


def map_figure(img, name="sweep", dpi=None):
    """The Figure of a `MapImage`: the image, its axes in the columns' units, a colour bar or legend.

    Laid out in inches (the axes `AX_INCHES` on the longer side), at `auto_dpi`, so that each grid point
    is at least one pixel of a PNG; PDF and SVG embed the image at its own resolution.
    """
    import matplotlib as mpl

    _, Figure = _matplotlib()
    index, palette, mappable, legend = colour_index(img)
    ny, nx = img.shape
    w, h = _axes_inches(img)
    left, bottom, top = 1.0, 0.8, 0.85
    right = 0.35 + (2.6 if img.kind == TRAINABILITY else 1.9)
    W, H = max(left + w + right, MIN_WIDTH), bottom + h + top
    left += (W - (left + w + right)) / 2  # a tall map: centred
    fig = Figure(figsize=(W, H), dpi=auto_dpi(img, dpi))
    ax = fig.add_axes((left / W, bottom / H, w / W, h / H))
    ax.imshow(index, cmap=palette, norm=mpl.colors.NoNorm(), origin="lower", aspect="auto",
              interpolation="nearest", interpolation_stage="data", extent=(-0.5, nx - 0.5, -0.5, ny - 0.5))
    for values, col, setter, label in ((img.xs, img.x, ax.set_xticks, ax.set_xlabel),
                                       (img.ys, img.y, ax.set_yticks, ax.set_ylabel)):
        positions, labels, log = axis_ticks(values)
        setter(positions, labels)
        label(f"{col} (log scale)" if log else col)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    fig.suptitle(f"sweep “{name}” — {img.color} over {img.x} x {img.y}\n{caption(img)}", fontsize=11,
                 y=1 - 0.12 / H, va="top")
    if mappable is not None:
        cax = fig.add_axes(((left + w + 0.2) / W, bottom / H, 0.2 / W, h / H))
        cb = fig.colorbar(mappable, cax=cax)
        if img.kind == TRAINABILITY:
            cb.set_ticks([-1, -0.5, 0, 0.5, 1],
                         labels=["−1: trained (rank)", "−0.5", "0", "0.5", "+1: diverged or stuck (rank)"])
            cb.set_label("trainability, rank-stretched within each sign")
        else:
            cb.set_label(img.color + (" (log colour scale)" if isinstance(mappable.norm, mpl.colors.LogNorm) else ""))
    else:
        handles = [mpl.patches.Patch(facecolor=c, label=t) for c, t in legend]
        if img.no_run or img.no_value:
            handles.append(mpl.patches.Patch(facecolor=NO_DATA, label="no data"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False, fontsize=9)
    fig.map_image = img
    return fig


def dimension_figure(result, what="trained/not-trained"):
    """log count of boundary boxes against log box size: the points (filled: fitted), the fit line, its slope."""
    _, Figure = _matplotlib()
    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    ax = fig.subplots()
    k, c, f = result.sizes, result.counts, result.fitted
    shown = c > 0
    ax.loglog(k[f & shown], c[f & shown], "o", color="#2166ac", label="boundary boxes (fitted)")
    if (~f & shown).any():
        ax.loglog(k[~f & shown], c[~f & shown], "o", mfc="none", color="#888888", label="boundary boxes (not fitted)")
    lo, hi = result.fit
    line = np.geomspace(lo / 1.3, hi * 1.3, 20)
    ax.loglog(line, np.exp(result.intercept) * line ** -result.dimension, "-", color="#b2182b",
              label=f"fit: slope −{result.dimension:.2f} (dimension {result.dimension:.2f}), R² {result.r2:.3f}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(k, [str(v) for v in k])
    ax.minorticks_off()
    ax.set_xlabel("box size (pixels)")
    ax.set_ylabel("boxes holding both sides")
    ax.set_title(f"box counting of the {what} boundary", fontsize=10)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=8, frameon=False)
    return fig


def draw(df, *, x, y, color=TRAINABILITY, name="sweep", dimension=False, fit=None, dpi=None, axes=None):
    """The map Figure of df (already filtered), with ``fig.map_image`` (the `MapImage`); with ``dimension``
    also ``fig.dimension`` (the `Dimension`) and ``fig.dimension_figure`` (its fit plot). The dimension is
    computed before anything is drawn, so its errors come first. axes: the grid's axes, for the message
    about points with several rows (`grid_image`)."""
    _matplotlib()
    img = grid_image(df, x, y, color, axes)
    result = dimension_of(img, fit) if dimension else None
    fig = map_figure(img, name, dpi)
    fig.dimension = result
    fig.dimension_figure = dimension_figure(result, boundary_name(img)) if dimension else None
    return fig

"""The Python API: `run`, `plot` and `status`, for notebooks and scripts (``import sweep``).

They do what ``sweep run``, ``sweep plot`` and ``sweep status`` do and return
Python objects instead of printing: `run` the rows (a DataFrame, as
`sweep.load` gives), `plot` a matplotlib Figure, `status` a `Status`.
Mistakes raise `sweep.errors.SweepError` (a `GridError` for the grid and
its overrides), whose message is the line the command line prints.
"""
import sys
from collections.abc import Mapping
from pathlib import Path


def run(grid, *, out="results", jobs=None, backend="threads", overwrite=False, progress=True, scheduler=None,
        **overrides):
    """Train what is missing of a sweep and return all its rows, as `sweep.load` gives them.

    grid: a grid file's path, or a dict with a grid file's structure (``{"name": "quick", "hidden": 4,
    "grid": {"lr": [0.1, 1.0]}, "zip": [...], "extra": [...], "exclude": [...], "datasets": {...}}``),
    validated as a file is (a dict is named ``<dict>`` in messages).
    out: the results root; the sweep goes to ``out/<name>/`` (``df.attrs["path"]``).
    jobs, backend, scheduler: as ``sweep run --jobs/--backend/--scheduler``.
    overwrite: replace results of a different grid found under the same name.
    progress: show progress (a notebook bar in Jupyter) and a summary on stderr; False prints nothing.
    overrides: run parameters or settings replacing the grid's, as ``sweep run --set`` (Python values:
    ``epochs=2000`` fixes a parameter, ``lr=[0.1, 1.0]`` or ``seed={"range": [0, 10]}`` makes it an axis,
    ``name="quick"`` renames the sweep); they are part of the grid, so of its manifest.

    Like ``sweep run``, it resumes: parts already written are verified and kept, only the rest is trained.
    """
    from sweep import runner
    from sweep.grid.overrides import from_kwargs
    from sweep.results import load

    if not isinstance(grid, Mapping):
        grid = _path(grid, "grid")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        from sweep.errors import SweepError

        raise SweepError(f"jobs: expected an integer >= 1 (or None: the CPU count), got {jobs!r}")
    summary = runner.run(grid, _path(out, "out"), jobs=jobs, backend=backend, quiet=not progress,
                         overwrite=overwrite, scheduler=scheduler, overrides=from_kwargs(overrides))
    if progress:
        print(summary.text(), file=sys.stderr, flush=True)
    df = load(summary.outdir)
    df.attrs["path"] = str(summary.outdir)
    return df


def plot(data, *, name=None, where=None, curvature=False, **options):
    """A Figure of a sweep: what ``sweep plot`` draws (`sweep.plots.plot_sweep`), returned, not written.

    data: a DataFrame from `sweep.load` or `sweep.run`, or a results directory. name: the title's sweep
    name (default: the manifest's). where: a filter, as ``--where``. curvature: the curvature figure of
    runs with diagnostics instead (`sweep.curvature_plots`, as ``--curvature``). options: those of
    `sweep.plots.plot_sweep` (``lr``, ``curves``, ``facet``...). The Figure shows itself in a notebook (as PNG), and
    ``fig.savefig(path)`` writes it. Needs matplotlib.
    """
    import pandas as pd

    from sweep.plots import _matplotlib, plot_sweep
    from sweep.results import load, select

    _matplotlib()  # a missing matplotlib is reported before anything is read
    if isinstance(data, pd.DataFrame):
        df = data
        path = data.attrs.get("path")
    else:
        path = _path(data, "data")
        df = load(path)
    name = name or (_sweep_name(path) if path else None) or "sweep"
    if curvature:
        from sweep.curvature_plots import plot_curvature
        from sweep.errors import SweepError

        extra = sorted(set(options) - {"dpi"})
        if extra:
            raise SweepError(f"curvature=True draws its own panels: it takes no {', '.join(extra)}")
        fig = plot_curvature(select(df, where), name, None, **options)
    else:
        fig = plot_sweep(select(df, where), name, None, **options)
    _show_in_notebooks(fig)
    return fig


def map(data, *, x, y, color="trainability", where=None, dimension=False, name=None, fit=None, dpi=None):
    """A trainability map: what ``sweep map`` draws (`sweep.maps`), a Figure returned, not written.

    data: a DataFrame from `sweep.load` or `sweep.run`, or a results directory (then only the columns the
    map and ``where`` need are read). x, y: numeric columns, one pixel per distinct value (at most 4096
    each), every (x, y) point at most once. color: ``"trainability"`` (rank-stretched, trained blue), a
    true/false column or another numeric column. where: a filter, as ``--where``. name: the title's sweep
    name. dpi: the resolution (default: one pixel per grid point, at least 150).

    The Figure carries ``fig.map_image``, the pixels as arrays (`sweep.maps.MapImage`). With
    ``dimension=True`` it also carries ``fig.dimension``, the box-counting dimension of the trained /
    not-trained boundary (`sweep.maps.Dimension`: ``.dimension``, ``.sizes``, ``.counts``, ``.fit``,
    ``.r2``), and ``fig.dimension_figure``, the Figure of its fit; ``fit=(2, 64)`` fixes the box sizes
    fitted. Without it both are None. Needs matplotlib.
    """
    import pandas as pd

    from sweep import maps
    from sweep.results import select
    from sweep.summary import axes_of

    maps._matplotlib()  # a missing matplotlib is reported before anything is read
    if isinstance(data, pd.DataFrame):
        df = select(data, where)
        path = data.attrs.get("path")
    else:
        path = _path(data, "data")
        df = maps.map_frame(path, x, y, color, where)
    name = name or (_sweep_name(path) if path else None) or "sweep"
    fig = maps.draw(df, x=x, y=y, color=color, name=name, dimension=dimension, fit=fit, dpi=dpi,
                    axes=axes_of(path) if path else None)
    _show_in_notebooks(fig)
    if fig.dimension_figure is not None:
        _show_in_notebooks(fig.dimension_figure)
    return fig


def status(path, *, out="results", verify=False, **overrides):
    """How much of a sweep is written: a `sweep.state.Status` (parts and runs done and total, `complete`,
    the parts failing their checks). path: a results directory, or a grid file (or dict) whose results
    are under `out` (with the `overrides` it was run with). verify: read every page, as ``--verify``."""
    from sweep.grid.overrides import from_kwargs
    from sweep.state import check

    if not isinstance(path, Mapping):
        path = _path(path, "path")
    return check(path, out, verify=verify, overrides=from_kwargs(overrides))


def _path(value, what):
    from sweep.errors import SweepError

    try:
        return Path(value)
    except TypeError:
        raise SweepError(f"{what}: expected a path, got {type(value).__name__}") from None


def _sweep_name(path):
    from sweep.errors import SweepError
    from sweep.store import Layout, read_manifest

    try:
        found = read_manifest(Layout(path))
    except SweepError:
        found = None
    return (found[0].get("name") if found else None) or Path(path).name


def _png(fig):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _show_in_notebooks(fig):
    """Give the Figure a PNG representation, so that Jupyter shows it as the cell's value.

    A matplotlib Figure made without pyplot has none of its own (its `_repr_html_` serves only the
    WebAgg backend), and IPython registers one for Figures only once pyplot's inline backend is loaded.
    """
    import functools

    fig._repr_png_ = functools.partial(_png, fig)

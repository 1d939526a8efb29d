"""sweep: train thousands of tiny sigmoid networks over a grid of hyperparameters.

From Python (a notebook, a script)::

    import sweep
    df = sweep.run("grid.toml", epochs=2000, lr=[0.1, 1.0])   # train what is missing; the rows
    sweep.summarize(df, by=["loss", "lr"])                     # per group: rates, epochs
    fig = sweep.plot(df)                                       # a matplotlib Figure
    sweep.status(df.attrs["path"])                             # parts and runs done

``run(grid, **overrides)`` trains a grid file or a dict of the same
structure, with parameters or settings overridden (as ``sweep run --set``),
and returns its rows; ``load(results_dir)`` reads a sweep's results as a
tidy DataFrame; ``summarize``, ``plot`` and ``status`` describe them.
``load_grid(path)`` reads and validates a grid file, ``expand(grid)`` gives
its runs table (one pandas row per run). Importing the package is cheap:
NumPy, pandas and Numba are imported only when these are first used.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "run", "load", "summarize", "plot", "map", "status", "load_grid", "expand"]

from sweep.api import map, plot, run, status  # noqa: E402


def __getattr__(name):
    if name in ("load_grid", "expand"):
        from sweep import grid

        return getattr(grid, name)
    if name == "load":
        from sweep.results import load

        return load
    if name == "summarize":
        from sweep.summary import summarize

        return summarize
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")

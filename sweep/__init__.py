"""sweep: train thousands of tiny sigmoid networks over a grid of hyperparameters.

``load_grid(path)`` reads and validates a grid file, ``expand(grid)`` gives
its runs table (one pandas row per run); ``load(results_dir)`` reads a
sweep's results as a tidy DataFrame. Importing the package is cheap: NumPy,
pandas and Numba are imported only when these are first used.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "load_grid", "expand", "load", "summarize"]


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

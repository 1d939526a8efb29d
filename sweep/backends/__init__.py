"""Backends: where the chunks of a sweep are trained.

Every backend is a module with one function::

    execute(work, *, jobs, say, quiet, client) -> iterator of (chunk, pyarrow.Table)

`work` is a list of `Work` items (a chunk, its runs, its data set, and what
`train_chunk` needs); the backend trains them wherever it trains and yields
each chunk's rows as soon as they are ready, in any order. The runner alone
writes the parts and counts the progress, so no backend writes a file, and
a worker that outlives its sweep cannot touch the results.
"""
from dataclasses import dataclass

NAMES = ("threads", "processes", "dask", "cuda")
# How a backend's one-line error for lost workers ends: nothing written is lost.
RESUME = "every part written so far is kept: run the same command again to resume"


@dataclass
class Work:
    """One chunk to train: the chunk (sweep.plan.Chunk), its runs, its data set's arrays, the parameter
    columns' Arrow schema, and whether weights are kept.

    The runs are `table` (a DataFrame of the chunk's runs in lane order), or, with `rows`, the rows of
    the sweep's whole runs table at those positions: taken only when the chunk is trained, so that the
    runs of a million-run sweep are not held twice. Sent to another process, a Work carries its own runs."""

    chunk: object
    table: object
    X: object
    Y: object
    params_schema: object
    with_weights: tuple  # the weight columns (sweep.collect.weight_columns); () for none
    record: tuple = None  # the statistics columns stored (the grid's `record`); None for all
    rows: object = None  # positions of the chunk's runs in `table`, in lane order; None: `table` is them
    diagnostics: bool = False  # the parts have the diagnostics columns (sweep.collect.DIAGNOSTIC_TYPES)

    @property
    def runs(self):
        """The chunk's runs, in lane order (a DataFrame)."""
        return self.table if self.rows is None else self.table.iloc[self.rows]

    def __getstate__(self):
        return dict(self.__dict__, table=self.runs, rows=None)


def module(name):
    """The module of backend `name`."""
    import importlib

    return importlib.import_module(f"sweep.backends.{'local' if name in ('threads', 'processes') else name}")

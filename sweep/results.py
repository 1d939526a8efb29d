"""`sweep.load`: a results directory as a tidy pandas DataFrame."""
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from sweep.collect import OUTCOMES
from sweep.errors import SweepError
from sweep.store import MANIFEST

CATEGORICAL = {"loss": ["mse", "bce"], "outcome": list(OUTCOMES), "criterion": ["margin", "loss"],
               "dtype": ["float64", "float32"]}


def load(path, columns=None):
    """One row per run, sorted by run_id.

    Categoricals for loss, outcome, criterion and dtype (every category
    listed, so group-bys show empty groups), nullable Int64 for
    epoch_converged, NumPy arrays in the list columns (outputs,
    checkpoint_epochs, checkpoint_loss, weights).
    """
    path = Path(path)
    if not path.is_dir() or not (path / MANIFEST).exists():
        raise SweepError(f"{path} is not a sweep results directory (no {MANIFEST} in it)")
    table = ds.dataset(path, format="parquet").to_table(columns=columns)
    df = table.to_pandas()
    for name, cats in CATEGORICAL.items():
        if name in df:
            df[name] = pd.Categorical(df[name], categories=cats)
    if "epoch_converged" in df:
        df["epoch_converged"] = df["epoch_converged"].astype("Int64")
    if "run_id" in df:
        df = df.sort_values("run_id", kind="stable").reset_index(drop=True)
    return df


def select(df, where):
    """The rows of `df` for which the pandas query `where` holds (all rows when None).

    ``where`` is a `DataFrame.query` expression over the columns, for example
    ``"lr == 1 and loss == 'bce'"``; a bad expression is a `SweepError`
    naming it, and an expression that selects nothing is one too.
    """
    if where is None:
        return df
    try:
        out = df.query(where)
    except Exception as exc:  # pandas raises many types here: Syntax, Name, Type, Value errors
        raise SweepError(f"--where {where!r} is not a valid filter ({type(exc).__name__}: {exc}); expected a "
                         f"pandas query over the columns, e.g. \"lr == 1 and loss == 'bce'\"") from None
    if len(out) == 0:
        raise SweepError(f"--where {where!r} selects none of the {len(df)} runs")
    return out

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

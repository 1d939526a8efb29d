"""Rows are bit-identical to those committed: refactors of the kernels, the runner or the storage must not
change a single bit of a row (`chunk_seconds`, a timing, aside).

The grid (tests/data/golden.toml) covers both dtypes, both losses, momentum, every init scheme, early stop,
the loss criterion, an inline data set and explicit checkpoints, with weights saved. A change that is meant
to alter rows (a different exp, another summation order) regenerates the file, and says so in its commit:

    python -m tests.test_golden --write
"""
import sys
from pathlib import Path

import pandas as pd

import sweep
from sweep.cli import main
from sweep.grid.applies import neutral_run
from sweep.params import DEFAULTS, OPTIMIZATION

DATA = Path(__file__).resolve().parent / "data"
GRID, ROWS = DATA / "golden.toml", DATA / "golden_rows.parquet"
TIMING = ["chunk_seconds"]


def fresh_rows(out):
    assert main(["run", str(GRID), "--out", str(out), "--quiet"]) == 0
    return sweep.load(Path(out) / "golden").drop(columns=TIMING)


def test_rows_are_bit_identical_to_the_committed_rows(tmp_path):
    """The committed rows predate the optimizer parameters (issue 17) and diagnostics (issue 18): every column
    they have is unchanged, run_id included, and the new parameter columns hold the defaults, null where they
    do not apply."""
    want = pd.read_parquet(ROWS)
    got = fresh_rows(tmp_path)
    added = OPTIMIZATION + ("diagnostics",)
    assert [c for c in got.columns if c not in added] == list(want.columns)
    for name in added:
        neutral = neutral_run(dict(DEFAULTS))[name]
        assert (got[name].isna() if neutral is None else got[name].astype(object) == neutral).all(), name
    for column in want.columns:
        a, b = got[column], want[column]
        if a.dtype == object:  # list columns: arrays element by element, bit for bit
            assert all(pd.Series(x).equals(pd.Series(y)) if hasattr(x, "__len__") else x == y
                       for x, y in zip(a, b)), column
        elif isinstance(a.dtype, pd.CategoricalDtype) or isinstance(b.dtype, pd.CategoricalDtype):
            assert a.astype(str).tolist() == b.astype(str).tolist(), column  # names: the same strings
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True, check_categorical=False, obj=column)


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = fresh_rows(tmp)
    if ROWS.exists():  # the committed columns, as the file holds them: the test holds later ones to their defaults
        committed = pd.read_parquet(ROWS)
        rows = rows[committed.columns].astype(committed.dtypes.to_dict())
    rows.to_parquet(ROWS, index=False)
    print(f"wrote {ROWS}: {len(rows)} rows")

"""`sweep.load`: a results directory as a tidy pandas DataFrame, and `select` (`--where`)."""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa

from kernels.vocab import CRITERIA, DTYPES, LOSSES
from sweep import store
from sweep.collect import OUTCOMES
from sweep.errors import SweepError, SweepWarning

CATEGORICAL = {"loss": list(LOSSES), "outcome": list(OUTCOMES), "criterion": list(CRITERIA), "dtype": list(DTYPES)}
LIST_PARAMETERS = ("checkpoints",)  # parameters whose value may be a list: tuples in the DataFrame


def read_table(path, columns=None, dictionary=False):
    """The rows of a results directory as an Arrow table: exactly the manifest's chunks.

    Each part is read only if its stamp (grid hash and chunk id), row count and schema are the
    manifest's; every page is checked against its checksum and its run ids against its chunk.
    Parts that fail, parts of another grid and missing parts are left out, each reported with a
    `SweepWarning`. dictionary: read the string columns but run_id as dictionaries.
    """
    from sweep.plan import chunk_id as chunk_id_of
    from sweep.grid.ids import id_array

    layout = store.require_results_dir(path)
    manifest, schema = store.read_manifest(layout)
    chunks = manifest.get("chunks") or {}
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise SweepError(f"no column {', '.join(map(repr, unknown))} in {layout.data}; it has "
                             f"{', '.join(schema.names)}")
        columns = list(columns)
    read_columns = None if columns is None else list(dict.fromkeys(["run_id", *columns]))
    names = [f.name for f in schema if f.name != "run_id" and (pa.types.is_large_string(f.type)
                                                                or pa.types.is_string(f.type))] if dictionary else None
    parts = store.list_parts(layout)
    present = [(cid, n, parts[cid]) for cid, n in chunks.items() if cid in parts]
    absent = sum(n for cid, n in chunks.items() if cid not in parts)

    def read(item):  # (table or None, problem or None); pyarrow releases the GIL, so parts are read in threads
        cid, n, part = item
        problem = store.check_part(part, chunk_id=cid, n_runs=n, grid_hash=manifest.get("grid_hash"),
                                   schema=schema, full=False)
        if problem is not None:
            return None, problem
        try:
            table = store.read_part(part, read_columns, names)
        except store.READ_ERRORS as exc:
            return None, f"damaged ({store.reason(exc)})"
        if chunk_id_of(id_array(table.column("run_id"))) != cid:
            return None, "its run_ids are not those of its chunk (duplicated or missing runs)"
        return (table if columns is None or "run_id" in columns else table.drop_columns(["run_id"])), None

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(read, present))
    tables = [table for table, _ in results if table is not None]
    problems = [f"{part.name} {problem}" for (_, _, part), (_, problem) in zip(present, results) if problem]
    for text in problems:
        warnings.warn(f"{layout.data}: left out {text}; `sweep run` moves it aside and trains its runs again",
                      SweepWarning, stacklevel=3)
    foreign = sorted(set(parts) - set(chunks))
    if foreign:
        warnings.warn(f"{layout.data}: left out {len(foreign)} part file{'s' * (len(foreign) != 1)} of another "
                      f"grid (e.g. {store.part_name(foreign[0])})", SweepWarning, stacklevel=3)
    if absent:
        total = sum(chunks.values())
        read = sum(table.num_rows for table in tables)
        warnings.warn(f"{layout.data}: the sweep is incomplete: {total - absent:,} of {total:,} runs are written"
                      + (f", {read:,} of them read" if read != total - absent else ""), SweepWarning, stacklevel=3)
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    return pa.concat_tables(tables) if tables else schema.empty_table()


def load(path, columns=None):
    """One row per run, sorted by run_id: exactly the runs of the manifest's chunks whose parts pass
    their checks (see `read_table`; anything left out is reported with a `SweepWarning`).

    Categoricals for loss, outcome, criterion and dtype (every category
    listed, so group-bys show empty groups) and for the other names
    (dataset, activation, init... and dataset_sha256: the values present,
    one byte a row where strings would take twenty), nullable Int64 for
    epoch_converged, tuples in the list-valued parameter `checkpoints`,
    float64 (or int64) NumPy arrays in the list columns (outputs,
    checkpoint_epochs, checkpoint_loss, weights).
    """
    table = read_table(path, columns, dictionary=True)
    # Column by column, each released once converted: the peak is the rows about twice, not four times.
    order = None
    if "run_id" in table.column_names:
        from sweep.grid.ids import id_array, id_order, id_strings

        ids = id_array(table.column("run_id"))
        order = pa.array(id_order(ids))
        ids = ids[order.to_numpy()]
    frame = {}
    for name in table.column_names:
        if name == "run_id":
            column = id_strings(ids)
            del ids
        else:
            column = table.column(name).combine_chunks()
            column = column if order is None else column.take(order)
        table = table.drop_columns([name])
        frame[name] = pa.Table.from_arrays([column], [name]).to_pandas()[name]
        del column
    df = pd.DataFrame(frame, copy=False)
    for name, cats in CATEGORICAL.items():
        if name in df:
            df[name] = pd.Categorical(df[name], categories=cats)
    if "epoch_converged" in df:
        df["epoch_converged"] = df["epoch_converged"].astype("Int64")
    for name in LIST_PARAMETERS:
        if name in df and df[name].dtype == object:
            df[name] = [tuple(int(e) for e in v) if v is not None and not isinstance(v, (int, float)) else v
                        for v in df[name]]
    df.attrs["path"] = str(path)  # where the rows come from: summaries and plots read the manifest there
    return df


def select(df, where):
    """The rows of `df` for which the filter `where` holds (all rows when None).

    ``where`` is an expression in the small language of `sweep.where` (column names, literals,
    comparisons, in, and/or/not), for example ``"lr == 1 and loss == 'bce'"``; it is parsed, never
    evaluated as code. A bad expression is a `SweepError` naming the offending part, and an
    expression that selects nothing is one too.
    """
    if where is None:
        return df
    from sweep.where import mask

    out = df[mask(df, where)]
    if len(out) == 0:
        raise SweepError(f"--where {where!r} selects none of the {len(df)} runs")
    return out

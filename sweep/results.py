"""`sweep.load`: a results directory as a tidy pandas DataFrame, and `select` (`--where`)."""
import collections
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

from kernels.vocab import CRITERIA, DTYPES, LOSSES
from sweep import store
from sweep.collect import OUTCOMES
from sweep.errors import SweepError, SweepWarning

CATEGORICAL = {"loss": list(LOSSES), "outcome": list(OUTCOMES), "criterion": list(CRITERIA), "dtype": list(DTYPES)}
LIST_PARAMETERS = ("checkpoints",)  # parameters whose value may be a list: tuples in the DataFrame


class _Parts:
    """The parts a results directory's manifest lists, the checks of each, and the warnings for what is
    left out. The manifest is parsed once and only its chunks and grid hash are kept (its grid holds
    every axis value: a million seeds are tens of MB as Python objects)."""

    def __init__(self, path, columns, dictionary):
        self.layout = store.require_results_dir(path)
        manifest, self.schema = store.read_manifest(self.layout)
        self.chunks = manifest.get("chunks") or {}
        self.grid_hash = manifest.get("grid_hash")
        del manifest
        schema = self.schema
        if columns is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise SweepError(f"no column {', '.join(map(repr, unknown))} in {self.layout.data}; it has "
                                 f"{', '.join(schema.names)}")
            columns = list(columns)
        self.columns = columns
        self.read_columns = None if columns is None else list(dict.fromkeys(["run_id", *columns]))
        self.names = [f.name for f in schema if f.name != "run_id" and (pa.types.is_large_string(f.type)
                                                                        or pa.types.is_string(f.type))] \
            if dictionary else None
        parts = store.list_parts(self.layout)
        self.present = [(cid, n, parts[cid]) for cid, n in self.chunks.items() if cid in parts]
        self.absent = sum(n for cid, n in self.chunks.items() if cid not in parts)
        self.foreign = sorted(set(parts) - set(self.chunks))
        self.problems = {}  # index in present -> what is wrong with that part

    @property
    def out_schema(self):
        """The schema of no rows: the selected columns, in their order."""
        if self.columns is None:
            return self.schema
        return pa.schema([self.schema.field(c) for c in self.columns], metadata=self.schema.metadata)

    @property
    def out_fields(self):
        """The fields of the rows read: those of `read_table`'s table (run_id first when selected, each once)."""
        if self.columns is None:
            return list(self.schema)
        return [self.schema.field(c) for c in self.read_columns if c != "run_id" or "run_id" in self.columns]

    def check(self, i, columns):
        """(table of part i's `columns` (None: all; else run_id among them), None) when its footer, the
        pages read and its run ids pass, else (None, what is wrong)."""
        from sweep.grid.ids import id_array
        from sweep.plan import chunk_id as chunk_id_of

        cid, n, part = self.present[i]
        problem = store.check_part(part, chunk_id=cid, n_runs=n, grid_hash=self.grid_hash, schema=self.schema,
                                   full=False)
        if problem is not None:
            return None, problem
        try:
            table = store.read_part(part, columns, self.names)
        except store.READ_ERRORS as exc:
            return None, f"damaged ({store.reason(exc)})"
        if chunk_id_of(id_array(table.column("run_id"))) != cid:
            return None, "its run_ids are not those of its chunk (duplicated or missing runs)"
        return table, None

    def check_all(self, columns):
        """[(index in present, table)] of the parts that pass `check`, in the manifest's order; the others'
        problems recorded. pyarrow releases the GIL, so parts are read in threads."""
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(lambda i: self.check(i, columns), range(len(self.present))))
        good = []
        for i, (table, problem) in enumerate(results):
            if problem is None:
                good.append((i, table))
            else:
                self.problems[i] = problem
        return good

    def warn(self, rows_read, stacklevel):
        """A `SweepWarning` for each part left out, for parts of another grid, and for an incomplete sweep."""
        data = self.layout.data
        for i in sorted(self.problems):
            warnings.warn(f"{data}: left out {self.present[i][2].name} {self.problems[i]}; `sweep run` moves it "
                          f"aside and trains its runs again", SweepWarning, stacklevel=stacklevel + 1)
        if self.foreign:
            foreign = self.foreign
            warnings.warn(f"{data}: left out {len(foreign)} part file{'s' * (len(foreign) != 1)} of another "
                          f"grid (e.g. {store.part_name(foreign[0])})", SweepWarning, stacklevel=stacklevel + 1)
        if self.absent:
            total = sum(self.chunks.values())
            written = total - self.absent
            warnings.warn(f"{data}: the sweep is incomplete: {written:,} of {total:,} runs are written"
                          + (f", {rows_read:,} of them read" if rows_read != written else ""), SweepWarning,
                          stacklevel=stacklevel + 1)


def read_table(path, columns=None, dictionary=False):
    """The rows of a results directory as an Arrow table: exactly the manifest's chunks.

    Each part is read only if its stamp (grid hash and chunk id), row count and schema are the
    manifest's; every page is checked against its checksum and its run ids against its chunk.
    Parts that fail, parts of another grid and missing parts are left out, each reported with a
    `SweepWarning`. dictionary: read the string columns but run_id as dictionaries.
    """
    parts = _Parts(path, columns, dictionary)
    columns = parts.columns
    tables = [table if columns is None or "run_id" in columns else table.drop_columns(["run_id"])
              for _, table in parts.check_all(parts.read_columns)]
    parts.warn(sum(table.num_rows for table in tables), stacklevel=3)
    return pa.concat_tables(tables) if tables else parts.out_schema.empty_table()


class _Whole(Exception):
    """Column `name` cannot be converted part by part (list<int> with null elements: pandas makes floats of
    all its lists): it is converted as one Arrow column."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


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

    A number or bool column with one value in every row (a parameter the
    grid fixes: hidden, epochs, lr...) is held as that one value seen
    through a read-only stride-0 view, shared the way pandas shares a
    view, so that writing into it copies it first. Without a column
    selection (or with run_id in it) the rows are sorted by run_id; a
    selection without run_id keeps the parts' order.
    """
    parts = _Parts(path, columns, dictionary=True)
    whole = set()
    while True:
        try:
            frame, rows = _assemble(parts, whole)
            break
        except _Whole as exc:
            whole.add(exc.name)
            parts.problems.clear()
    parts.warn(rows, stacklevel=2)
    frame.attrs["path"] = str(path)  # where the rows come from: summaries and plots read the manifest there
    return frame


def _in_order(function, items, ahead):
    """function(item) for each item, in order, computed in threads at most `ahead` items in advance; a
    result is held here no longer than until it is handed out."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending = collections.deque(pool.submit(function, item) for item in items[:ahead])
        for item in items[ahead:]:
            pending.append(pool.submit(function, item))
            yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _assemble(parts, whole):
    """(the DataFrame of the parts that pass their checks, its number of rows); the columns named in
    `whole` converted as one Arrow column each, the others part by part.

    Each part is read (a few ahead, in threads), checked and converted into the DataFrame's columns at
    its place in the manifest's order before the next is, so that the peak is the DataFrame and a few
    parts, not the whole Arrow table beside the DataFrame; the rows are put in run_id order at the end,
    column by column."""
    from sweep.grid.ids import id_array, id_order, id_strings

    fields = parts.out_fields
    slots = np.concatenate([[0], np.cumsum([n for _, n, _ in parts.present], dtype=np.int64)])
    builders = {f.name: _builder(f.name, f.type, int(slots[-1]), f.name in whole)
                for f in fields if f.name != "run_id"}
    good = []
    ids = np.empty(int(slots[-1]), dtype="S16")
    ahead = max(1, min(4, os.cpu_count() or 1))
    for k, (table, problem) in enumerate(_in_order(lambda i: parts.check(i, parts.read_columns),
                                                    range(len(parts.present)), ahead)):
        if problem is not None:
            parts.problems[k] = problem
            continue
        good.append(k)
        ids[slots[k]:slots[k + 1]] = id_array(table.column("run_id"))
        for name, builder in builders.items():
            builder.add(table.column(name), slice(slots[k], slots[k + 1]))
        del table
        # Arrow's allocator keeps what a part took; handed back, the parts' buffers do not add up in the
        # resident memory (about 40 MB less at the peak for 16 parts).
        pa.default_memory_pool().release_unused()
    if not good:  # as Arrow converts an empty table: the strings as strings
        return _frame({f.name: _WholeColumn(f.name, f.type).finish(None, None) for f in parts.out_schema},
                      set()), 0
    # take: the rows read (at their slots) in the DataFrame's order; order: the same, counted in the rows of
    # the parts read, one after the other (None: as they are)
    at = None
    if len(good) != len(parts.present):
        at = np.concatenate([np.arange(slots[k], slots[k + 1]) for k in good])
        ids = ids[at]
    rows = len(ids)
    order = sorted_ids = None
    if any(f.name == "run_id" for f in fields):
        order = id_order(ids)
        sorted_ids = ids[order]
    del ids
    take = order if at is None else at if order is None else at[order]
    del at
    frame, shared = {}, set()
    for f in fields:
        if f.name == "run_id":
            frame[f.name] = pa.Table.from_arrays([id_strings(sorted_ids)], ["run_id"]).to_pandas()["run_id"]
            sorted_ids = None
            continue
        builder = builders.pop(f.name)
        frame[f.name] = builder.finish(take, order)
        if getattr(builder, "constant", False):
            shared.add(f.name)
        del builder
    return _frame(frame, shared), rows


def _builder(name, kind, n, whole):
    """What converts column `name` (of Arrow type `kind`, `n` rows at most) part by part."""
    if whole:
        return _WholeColumn(name, kind)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):  # read as dictionaries
        return _Names(n, CATEGORICAL.get(name))
    if _is_number(kind):
        return _Numbers(n)
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _is_number(kind.value_type):
        return _Lists(name, n)
    return _WholeColumn(name, kind)


def _is_number(kind):
    return pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_float32(kind) \
        or pa.types.is_float64(kind)


def _rows(array, take):
    """`array` (every slot) as the DataFrame's rows: taken at `take`, or as it is."""
    return array if take is None else array[take]


class _Numbers:
    """An int, float or bool column, as pandas gets it from Arrow (ints with nulls as floats, NaN for
    null; bools with nulls as objects, None for null). While every row has the same value (bit for bit)
    it is that value seen through a read-only stride-0 view: no memory per row."""

    def __init__(self, n):
        self.n = n
        self.first = None  # the one value so far, a 1-element array
        self.values = None  # every slot, once two values differ
        self.nulls = None  # where the nulls are, once there is one (ints and bools)

    def add(self, column, where):
        if column.null_count and not pa.types.is_floating(column.type):
            if self.nulls is None:
                self.nulls = np.zeros(self.n, dtype=bool)
            self.nulls[where] = column.is_null().to_numpy()
            column = column.fill_null(False if pa.types.is_boolean(column.type) else 0)
        values = np.ascontiguousarray(column.to_numpy())  # floats: NaN for null
        if self.values is None:
            bits = values.view(f"u{values.itemsize}")
            first = bits[0] if self.first is None else self.first.view(bits.dtype)[0]
            if self.nulls is None and (bits == first).all():
                if self.first is None:
                    self.first = values[:1].copy()
                return
            self.values = np.empty(self.n, dtype=values.dtype)
            if self.first is not None:
                self.values[:] = self.first[0]
        self.values[where] = values

    @property
    def constant(self):
        return self.values is None

    def finish(self, take, order):
        if self.values is None:
            return np.broadcast_to(self.first.reshape(()), (self.n if take is None else len(take),))
        values = _rows(self.values, take)
        self.values = None
        if self.nulls is not None:
            nulls = _rows(self.nulls, take)
            if nulls.any():
                values = values.astype(object if values.dtype == bool else np.float64)
                values[nulls] = None if values.dtype == object else np.nan
        return values


class _Names:
    """A string column read as dictionaries: codes into the names met so far, in the order Arrow unifies
    the parts' dictionaries (first met, first), then a categorical of those names, or of `categories`
    (a name not among them is NaN). While every row has the same name its codes are a stride-0 view."""

    def __init__(self, n, categories):
        self.n = n
        self.categories = categories
        self.vocabulary = {}
        self.first = None
        self.codes = None

    def add(self, column, where):
        pieces = []
        for chunk in column.chunks:
            remap = np.array([self.vocabulary.setdefault(v, len(self.vocabulary))
                              for v in chunk.dictionary.to_pylist()] + [-1], dtype=np.int32)
            if len(remap) == 2 and not chunk.null_count:  # one name (a parameter the grid fixes)
                pieces.append(np.broadcast_to(remap[:1], (len(chunk),)))
            else:
                indices = chunk.indices.fill_null(-1) if chunk.null_count else chunk.indices
                pieces.append(remap[indices.to_numpy()])  # null: -1, which takes the last, -1
        codes = np.concatenate(pieces) if len(pieces) != 1 else pieces[0]
        if self.codes is None:
            if codes.size and (codes == (codes[0] if self.first is None else self.first)).all():
                if self.first is None:
                    self.first = int(codes[0])
                return
            self.codes = np.full(self.n, -1 if self.first is None else self.first, dtype=np.int32)
        self.codes[where] = codes

    @property
    def constant(self):
        return self.codes is None

    def finish(self, take, order):
        names = list(self.vocabulary)
        if self.categories is not None:
            position = {c: j for j, c in enumerate(self.categories)}
            recode = np.array([position.get(v, -1) for v in names] + [-1], dtype=np.int32)
            dtype = pd.CategoricalDtype(self.categories)
        else:
            recode = None
            dtype = pd.CategoricalDtype(np.array(names, dtype=object), ordered=False)
        small = _code_dtype(len(dtype.categories))
        if self.codes is None:
            code = self.first if recode is None else recode[self.first]
            codes = np.broadcast_to(np.array(code, dtype=small), (self.n if take is None else len(take),))
        else:
            codes = _rows(self.codes, take)
            self.codes = None
            codes = (codes if recode is None else recode[codes]).astype(small)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _code_dtype(n_categories):
    """The dtype of the codes pandas gives a categorical of that many categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


class _Lists:
    """A list column: an object array of NumPy arrays (None for a null list), as pandas gets it from Arrow,
    converted part by part. Null elements in int or bool lists make pandas convert every list of the
    column to floats (or objects), so such a column is converted whole instead (`_Whole`)."""

    def __init__(self, name, n):
        self.name = name
        self.values = np.empty(n, dtype=object)

    def add(self, column, where):
        import pyarrow.compute as pc

        if not pa.types.is_floating(column.type.value_type) and any(
                pc.list_flatten(chunk).null_count for chunk in column.chunks):
            raise _Whole(self.name)
        self.values[where] = pa.Table.from_arrays([column], ["x"]).to_pandas()["x"].to_numpy()

    def finish(self, take, order):
        values, self.values = self.values, None
        return _rows(values, take)


class _WholeColumn:
    """Any other column: the Arrow chunks of the parts read, converted at once as `to_pandas` does, in
    `order` (counted in the rows read, one part after the other) when given."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.chunks = []

    def add(self, column, where):
        self.chunks.extend(column.chunks)

    def finish(self, take, order):
        column = pa.chunked_array(self.chunks, self.kind).combine_chunks()
        self.chunks = []
        if order is not None:
            column = column.take(pa.array(order))
        return pa.Table.from_arrays([column], [self.name]).to_pandas()[self.name]


class _SharedView:
    """What the stride-0 columns of `load` are views of, to pandas: one object that never goes away.

    A block that pandas knows to be shared with another object is copied before it is written into
    (Copy-on-Write), exactly as a column viewed by a second DataFrame: that is what lets
    `df.loc[m, "lr"] = 3` and the like work on a read-only stride-0 column."""


_SHARED = _SharedView()


def _frame(frame, shared):
    """The DataFrame of `frame` (name -> column), the types of `load`'s docstring; the columns named in
    `shared` are read-only views, marked shared (or copied, where pandas cannot mark them)."""
    for name, cats in CATEGORICAL.items():
        if name in frame and not isinstance(frame[name], pd.Categorical):
            frame[name] = pd.Categorical(frame[name], categories=cats)
    if "epoch_converged" in frame:
        frame["epoch_converged"] = pd.Series(frame["epoch_converged"], copy=False).astype("Int64")
    for name in LIST_PARAMETERS:
        if name in frame and frame[name].dtype == object:
            frame[name] = _tuples(frame[name])
    df = pd.DataFrame(frame, copy=False)
    for name in shared:
        if name in df and not _mark_shared(df, name):
            df[name] = df[name].copy()
    return df


def _mark_shared(df, name):
    """Mark the block of column `name` as shared (see `_SharedView`); False where pandas does not copy a
    shared block before writing into it (pandas 2 without Copy-on-Write) or has no such mark: then the
    caller copies the column."""
    if int(pd.__version__.split(".")[0]) < 3 and pd.get_option("mode.copy_on_write") is not True:
        return False
    try:
        mgr = df._mgr
        block = mgr.blocks[mgr.blknos[df.columns.get_loc(name)]]
        block.refs.add_index_reference(_SHARED)
        return block.refs.has_reference()
    except (AttributeError, TypeError, IndexError):
        return False


def _tuples(values):
    """Lists of ints as tuples (hashable: group-bys and summaries work); None and numbers as they are. Equal
    lists share one tuple."""
    seen = {}
    out = []
    for v in values:
        if v is not None and not isinstance(v, (int, float)):
            key = (v.dtype.str, v.tobytes()) if isinstance(v, np.ndarray) else None
            t = seen.get(key) if key is not None else None
            if t is None:
                t = tuple(int(e) for e in v)
                if key is not None:
                    seen[key] = t
            v = t
        out.append(v)
    return out


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

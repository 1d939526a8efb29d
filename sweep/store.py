"""A sweep on disk: the results directory (a Parquet dataset and nothing else) and its companion.

Layout for a sweep named NAME under the results root OUT::

    OUT/NAME/                         the results: every file is a Parquet file of one schema
        _sweep.parquet                the manifest: no rows, the parts' schema, and the manifest
                                      (JSON: grid, grid hash, chunks...) in its key-value metadata
        part-<chunk_id>.parquet       the rows of one chunk; its key-value metadata names the
                                      grid hash and the chunk, its pages carry CRC checksums
    OUT/_NAME/                        everything else (its name cannot be a sweep's: names start
                                      with a letter or a digit)
        lock, writers/                who is writing (see sweep.lock)
        tmp/<writer>/                 files being written, renamed into place when complete
        quarantine/                   parts that failed verification or belong to another grid
        slurm/                        the SLURM array script, its record and logs (sweep.slurm)
        figure.png                    `sweep plot`'s default figure
        curvature.png                 `sweep plot --curvature`'s

Nothing but Parquet files lives in OUT/NAME, so pandas, pyarrow, Polars and
DuckDB read it as it is. A file is written under tmp/, flushed and renamed
into place, so a reader (or a resumed sweep) sees all of it or none of it
whenever the writer is killed.
"""
import errno
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweep.errors import SweepError

MANIFEST = "_sweep.parquet"
LEGACY_MANIFEST = "_sweep.json"  # the manifest of sweep <= 0.1.0, beside the parts
MANIFEST_KEY = b"sweep.manifest"
PART_KEY = b"sweep.part"
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"
# What reading a damaged Parquet file can raise: Arrow's errors, and also e.g. UnicodeDecodeError
# from a damaged column name, found by flipping single bits (tests/test_store.py).
READ_ERRORS = (OSError, pa.ArrowException, ValueError, KeyError, IndexError, TypeError, OverflowError)


def part_name(chunk_id):
    return f"{PART_PREFIX}{chunk_id}{PART_SUFFIX}"


def chunk_of(name):
    """The chunk id of a part's file name, None for any other name."""
    if name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
        cid = name[len(PART_PREFIX):-len(PART_SUFFIX)]
        if cid and all(c in "0123456789abcdef" for c in cid):
            return cid
    return None


class Layout:
    """The paths of one sweep's results directory and of its companion directory."""

    def __init__(self, outdir):
        self.data = Path(outdir)
        name = self.data.name if self.data.name not in ("", ".", "..") else self.data.resolve().name
        parent = self.data.parent if self.data.name not in ("", ".", "..") else self.data.resolve().parent
        self.admin = parent / f"_{name}"

    @property
    def manifest(self):
        return self.data / MANIFEST

    @property
    def quarantine(self):
        return self.admin / "quarantine"

    @property
    def slurm(self):
        return self.admin / "slurm"

    @property
    def figure(self):
        return self.admin / "figure.png"

    @property
    def curvature_figure(self):
        return self.admin / "curvature.png"

    @property
    def tmp(self):
        return self.admin / "tmp"

    def part(self, chunk_id):
        return self.data / part_name(chunk_id)


def layout_of(where):
    """`where` as a Layout: a Layout, or the path of a results directory."""
    return where if isinstance(where, Layout) else Layout(where)


def reason(exc):
    """The gist of an exception, on one line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_dir(path, what="directory"):
    """mkdir -p, or a one-line SweepError naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SweepError(f"cannot create the {what} {path}: a file of that name is in the way") from None
    except OSError as exc:
        raise SweepError(f"cannot create the {what} {path}: {reason(exc)}") from None
    if not path.is_dir():
        raise SweepError(f"cannot create the {what} {path}: a file of that name is in the way")
    return path


def ensure_writable_dir(path):
    """Create `path` (and parents) and check that a file can be written in it, or fail with one line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "a file of that name is in the way" if isinstance(exc, FileExistsError) else reason(exc)
        raise SweepError(f"cannot write to output directory {path}: {why}") from None
    probe = path / f".probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SweepError(f"cannot write to output directory {path}: {reason(exc)}") from None
    return path


def write_atomic(final, tmp_dir, write):
    """Write through `write(fh)` into a new file in `tmp_dir`, flush it to disk, rename it over `final`."""
    final = Path(final)
    tmp = Path(tmp_dir) / f"{final.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.EXDEV:
            raise SweepError(f"cannot write {final}: {tmp_dir} is on another filesystem") from None
        raise SweepError(f"cannot write {final}: {reason(exc)}") from None
    _fsync_dir(final.parent)
    return final


def read_json(path, what, remedy):
    """The JSON object in `path`, None if there is no such file; unreadable is a SweepError
    naming `what` it should be and the `remedy`."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path} is not a readable {what} ({reason(exc)}); {remedy}") from None


def write_json(path, obj, tmp_dir):
    """Write `obj` as indented JSON, atomically."""
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    return write_atomic(path, tmp_dir, lambda fh: fh.write(data))


# --------------------------------------------------------------------------- manifest

def _with_metadata(table_or_schema, key, obj):
    meta = dict(table_or_schema.schema.metadata or {}) if isinstance(table_or_schema, pa.Table) \
        else dict(table_or_schema.metadata or {})
    meta[key] = json.dumps(obj, sort_keys=True).encode()
    return table_or_schema.replace_schema_metadata(meta) if isinstance(table_or_schema, pa.Table) \
        else table_or_schema.with_metadata(meta)


def write_manifest(layout, manifest, schema, tmp_dir):
    """Write the manifest: a Parquet file with no rows, the parts' `schema` and `manifest` in its metadata."""
    layout = layout_of(layout)
    table = _with_metadata(schema, MANIFEST_KEY, manifest).empty_table()
    return write_atomic(layout.manifest, tmp_dir, lambda fh: pq.write_table(table, fh))


def read_manifest(layout, remedy="move it away or run with --overwrite to replace it"):
    """(manifest dict, parts' schema), or None when there is no manifest; unreadable is a SweepError."""
    layout = layout_of(layout)
    path = layout.manifest
    if not path.exists():
        if (layout.data / LEGACY_MANIFEST).exists():
            raise SweepError(f"{layout.data} was written by an older version of sweep (it has {LEGACY_MANIFEST}); "
                             f"{remedy}")
        return None
    try:
        schema = pq.read_schema(path)
        manifest = json.loads((schema.metadata or {})[MANIFEST_KEY])
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except READ_ERRORS as exc:
        what = "no sweep manifest in it" if isinstance(exc, KeyError) else reason(exc)
        raise SweepError(f"{path} is not a readable sweep manifest ({what}); {remedy}") from None
    meta = {k: v for k, v in (schema.metadata or {}).items() if k != MANIFEST_KEY}
    return manifest, schema.with_metadata(meta or None)


def is_results_dir(path):
    return (Path(path) / MANIFEST).is_file() or (Path(path) / LEGACY_MANIFEST).is_file()


# --------------------------------------------------------------------------- parts

def write_part(layout, chunk_id, table: pa.Table, grid_hash, tmp_dir, dictionary=True):
    """Write one chunk's rows as part-<chunk_id>.parquet, atomically, stamped with the grid hash and
    chunk id, with page checksums. dictionary: the columns to dictionary-encode (True: all)."""
    layout = layout_of(layout)
    table = _with_metadata(table, PART_KEY, {"grid_hash": grid_hash, "chunk_id": chunk_id})
    return write_atomic(layout.part(chunk_id), tmp_dir, lambda fh: write_rows(table, fh, dictionary))


def write_rows(table: pa.Table, sink, dictionary=True):
    """A part's rows as Parquet into `sink`: zstd, page checksums, dictionaries for `dictionary`."""
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True, use_dictionary=dictionary)


def list_parts(layout):
    """{chunk_id: path} of the part files present (whatever their content)."""
    layout = layout_of(layout)
    out = {}
    if not layout.data.is_dir():
        return out
    for entry in os.scandir(layout.data):
        cid = chunk_of(entry.name)
        if cid is not None and (entry.is_file() or not os.path.exists(entry.path)):  # not a FIFO, a directory...
            out[cid] = Path(entry.path)
    return out


def stray_files(layout):
    """Files in the results directory that are neither the manifest nor a part's name."""
    layout = layout_of(layout)
    if not layout.data.is_dir():
        return []
    return sorted(Path(e.path) for e in os.scandir(layout.data)
                  if e.name != MANIFEST and chunk_of(e.name) is None)


def _schema_difference(got, want):
    got_names, want_names = got.names, want.names
    missing = [n for n in want_names if n not in got_names]
    extra = [n for n in got_names if n not in want_names]
    if missing or extra:
        return ("columns " + ", ".join(f"-{n}" for n in missing[:3]) + (", " if missing and extra else "")
                + ", ".join(f"+{n}" for n in extra[:3]))
    for g, w in zip(got, want):
        if g.name != w.name:
            return "columns in another order"
        if not g.type.equals(w.type):
            return f"column {g.name} is {g.type}, expected {w.type}"
    return "another schema"


def check_part(path, *, chunk_id, n_runs, grid_hash, schema, full=True):
    """None when the part at `path` is chunk `chunk_id` of the grid `grid_hash`, else what is wrong.

    Always: a readable footer, the part's stamp (grid hash, chunk id), the row count and the schema.
    With `full`, also every page against its checksum (all data is decoded) and the run ids against
    the chunk id, a hash of them: a part copied over another of the same size is caught there.
    """
    from sweep.plan import chunk_id as chunk_id_of
    from sweep.grid.ids import id_array

    try:
        meta = pq.read_metadata(path)
        kv = meta.metadata or {}
    except READ_ERRORS as exc:
        return f"unreadable ({reason(exc)})"
    try:
        stamp = json.loads(kv[PART_KEY])
        stamp_grid, stamp_chunk = stamp["grid_hash"], stamp["chunk_id"]
    except (KeyError, ValueError, TypeError):
        return "not written by sweep (no grid hash and chunk id in its metadata)"
    if stamp_grid != grid_hash:
        return f"belongs to another grid (grid hash {stamp_grid}, this sweep's is {grid_hash})"
    if stamp_chunk != chunk_id:
        return f"holds chunk {stamp_chunk}, not {chunk_id}"
    if meta.num_rows != n_runs:
        return f"has {meta.num_rows} rows, expected {n_runs}"
    try:
        got = meta.schema.to_arrow_schema()
    except READ_ERRORS as exc:
        return f"unreadable schema ({reason(exc)})"
    if schema is not None and not got.remove_metadata().equals(schema.remove_metadata()):
        return f"has another schema than the sweep's ({_schema_difference(got, schema)})"
    if schema is not None and (got.metadata or {}).get(b"pandas") != (schema.metadata or {}).get(b"pandas"):
        return "has other pandas metadata than the sweep's (column names and types as pandas reads them)"
    if not full:
        return None
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        run_ids = id_array(table.column("run_id"))
    except READ_ERRORS as exc:
        return f"damaged ({reason(exc)})"
    if table.num_rows != n_runs:
        return f"has {table.num_rows} rows, expected {n_runs}"
    if chunk_id_of(run_ids) != chunk_id:
        return "its run_ids are not those of its chunk (duplicated or missing runs)"
    return None


def read_part(path, columns=None, dictionary=None):
    """A part's rows (of `columns`, or all), every page read checked against its checksum; the string
    columns named in `dictionary` read as dictionaries (categoricals in pandas)."""
    return pq.read_table(path, columns=columns, page_checksum_verification=True, read_dictionary=dictionary)


def require_results_dir(path):
    """The Layout of the results directory `path`, or a SweepError saying what `path` is instead."""
    path = Path(path)
    if not path.exists():
        raise SweepError(f"{path}: no such directory (a results directory is OUT/NAME, written by sweep run)")
    if not path.is_dir() or not is_results_dir(path):
        raise SweepError(f"{path} is not a sweep results directory (no {MANIFEST} in it)")
    return Layout(path)


def quarantine(layout, path):
    """Move a part that failed verification (or any stray file) into quarantine/, where it is neither
    read nor lost; returns its new path."""
    layout = layout_of(layout)
    target_dir = make_dir(layout.quarantine, "quarantine directory")
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.name}.{n}"
        n += 1
    try:
        os.replace(path, target)
    except OSError as exc:
        raise SweepError(f"cannot move {path} aside to {target}: {reason(exc)}; move or delete it by hand "
                         f"and run again") from None
    return target


def remove_results(layout):
    """Delete what sweep wrote for this sweep (parts, manifest, quarantine, SLURM files, figure), nothing else."""
    layout = layout_of(layout)
    try:
        if layout.data.is_dir():
            for entry in os.scandir(layout.data):
                if entry.name in (MANIFEST, LEGACY_MANIFEST, "_sweep.png") or chunk_of(entry.name) is not None:
                    os.unlink(entry.path)
                elif entry.name in ("_corrupt", "_slurm") and entry.is_dir():  # sweep <= 0.1.0
                    shutil.rmtree(entry.path)
                elif entry.name.startswith(".part-") and entry.name.endswith(".tmp"):
                    os.unlink(entry.path)
        for sub in (layout.quarantine, layout.slurm):
            if sub.is_dir():
                shutil.rmtree(sub)
        layout.figure.unlink(missing_ok=True)
        layout.curvature_figure.unlink(missing_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot remove the old results in {layout.data}: {reason(exc)}") from None

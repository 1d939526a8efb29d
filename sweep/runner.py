"""`sweep run`: plan the chunks, verify those already written, train the rest and write each as a part.

The steps, in order: expand the grid (`prepare`, no I/O); become the
directory's writer (`sweep.lock`); under its setup lock, make the directory
this grid's (`open_results`: its manifest) and sort the chunks into done and
to do, moving aside whatever fails verification or belongs to another grid
(`scan`); then train with a backend (`sweep.backends`) and write each
chunk's part the moment its rows arrive.
"""
import hashlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sweep import store
from sweep.errors import SweepError
from sweep.progress import Progress

MANIFEST_VERSION = 2


@dataclass
class Prepared:
    """A grid resolved into runs and chunks, the manifest it gets, and where its results go."""

    grid: object
    runs: object  # pandas DataFrame, one row per run
    chunks: list
    layout: store.Layout
    manifest: dict
    schema: pa.Schema  # of every part
    params_schema: pa.Schema  # of the parameter columns
    diagnostics: bool  # the parts have the diagnostics columns (some run computes them)

    @property
    def outdir(self):
        return self.layout.data

    @property
    def weight_columns(self):
        """The weight columns of the parts (`sweep.collect.weight_columns`), as the schema has them."""
        from sweep.collect import WEIGHT_COLUMNS

        return tuple(name for name in WEIGHT_COLUMNS if name in self.schema.names)

    @property
    def dictionary_columns(self):
        """The columns of the parts that are dictionary-encoded (`sweep.collect.dictionary_columns`)."""
        from sweep.collect import dictionary_columns

        return dictionary_columns(self.schema)

    @property
    def grid_hash(self):
        return self.manifest["grid_hash"]


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@dataclass
class Summary:
    runs: int
    runs_trained: int
    chunks_trained: int
    converged: int  # None when the grid does not record `converged`
    seconds: float
    net_epochs: int
    outdir: Path
    label: str = "sweep: "

    def text(self):
        share = "convergence not recorded" if self.converged is None else \
            f"{self.converged / self.runs if self.runs else 0.0:.1%} converged"
        if self.runs_trained == 0:
            if self.runs == 0:
                head = f"{self.label}nothing to train: no runs here"
            else:
                which = "the 1 run was" if self.runs == 1 else f"all {self.runs:,} runs were"
                head = f"{self.label}nothing to train: {which} already written, {share}"
        else:
            rate = self.net_epochs / self.seconds if self.seconds > 0 else 0.0
            head = (f"{self.label}{_plural(self.runs, 'run')} ({self.runs_trained:,} trained now in "
                    f"{_plural(self.chunks_trained, 'chunk')}), {share}; {self.seconds:.1f} s, "
                    f"{rate:.3g} network-epochs/s")
        return f"{head}\nsweep: results in {self.outdir}  (pandas.read_parquet or sweep.load)"


ROW_VERSIONS = ("sweep", "numba", "numpy")  # the versions a row's numbers depend on


def versions():
    """The versions of what wrote a sweep (kept in its manifest)."""
    import numba
    import pandas

    import sweep

    return {"sweep": sweep.__version__, "numba": numba.__version__, "numpy": np.__version__,
            "pandas": pandas.__version__, "pyarrow": pa.__version__, "python": sys.version.split()[0]}


def _grid_hash(ids, order, chunks):
    """16 hex digits of the sha256 of the chunk ids, then the sorted run ids joined by commas.

    ids: the runs' 'S16' ids; order: the permutation that sorts them."""
    from sweep.grid.ids import joined_ids

    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk.chunk_id.encode())
    h.update(joined_ids(ids[order], b","))
    return h.hexdigest()[:16]


def params_schema(runs):
    """One Arrow schema for the parameter columns of every part (inferred from a
    real row: an empty object column would infer as null). The runs table's
    categoricals (names) are stored as strings."""
    row = runs.iloc[:1].reset_index(drop=True)
    names = [c for c in row.columns if isinstance(row[c].dtype, pd.CategoricalDtype)]
    return pa.Schema.from_pandas(row.astype({c: "str" for c in names}), preserve_index=False)


def grid_label(grid):
    """How a grid source is named in the manifest: its file, or <dict>."""
    from sweep.grid.parse import DICT_FILE

    return DICT_FILE if isinstance(grid, Mapping) else str(grid)


def prepare(grid_path, out_root="results", overrides=None):
    """Load and expand the grid (a grid file, or a dict of the same structure; with `overrides`, a list of
    `sweep.grid.overrides.Override`, applied): its runs, chunks, manifest and schema. Reads and writes no
    results."""
    from sweep.collect import result_schema, weight_columns
    from sweep.grid.ids import id_array
    from sweep.grid.parse import read_grid
    from sweep.grid.runs import expand_ordered
    from sweep.plan import plan_chunks

    grid = read_grid(grid_path, overrides)
    runs, order = expand_ordered(grid)  # one sort of the run ids, for the chunks and the grid hash too
    ids = id_array(runs["run_id"])
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets, order)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": grid.name,
        "grid_file": grid_label(grid_path),
        "grid": grid.resolved,
        "grid_hash": _grid_hash(ids, order, chunks),
        "axes": list(dict.fromkeys(n for block in [grid.main, *grid.extras] for axis in block.axes for n in axis.names)),
        "runs": int(len(runs)),
        "chunks": {c.chunk_id: int(c.n_runs) for c in chunks},
        "chunk_size": grid.chunk_size,
    }
    pschema = params_schema(runs)
    diagnostics = bool(runs["diagnostics"].any())
    schema = result_schema(pschema, weight_columns(runs), grid.record, diagnostics)
    return Prepared(grid, runs, chunks, store.Layout(Path(out_root) / grid.name), manifest, schema, pschema,
                    diagnostics)


def describe_change(old, new):
    """A short account of how two manifests' grids differ."""
    a, b = old.get("grid") or {}, new.get("grid") or {}
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if not changed:
        return f"{old.get('runs', 0):,} runs there, {new.get('runs', 0):,} in this grid"
    shown = ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")
    return f"changed: {shown}; {old.get('runs', 0):,} runs there, {new.get('runs', 0):,} in this grid"


def existing_manifest(prepared, *, overwrite=False):
    """The manifest found in the results directory if it is this grid's; None if there is none (or, with
    `overwrite`, if it is another grid's or unreadable); otherwise a SweepError that says why."""
    remedy = "re-run with --overwrite to replace them, or give the sweep another name or --out"
    if prepared.grid.overrides and "name" not in prepared.grid.overrides:
        remedy += " (also an override: --set name=NEW, or name=NEW in sweep.run)"
    try:
        found = store.read_manifest(prepared.layout, remedy="move it away and run again (the parts that pass their "
                                    "checks are kept), or re-run with --overwrite to discard them")
    except SweepError:
        if overwrite:
            return None
        raise
    if found is None:
        return None
    manifest, schema = found
    if manifest.get("grid_hash") != prepared.grid_hash:
        if overwrite:
            return None
        raise SweepError(f"{prepared.outdir} holds results of a different grid ({describe_change(manifest, prepared.manifest)}); "
                         f"{remedy}")
    if manifest.get("chunks") != prepared.manifest["chunks"] or manifest.get("runs") != prepared.manifest["runs"] \
            or (schema.metadata or {}).get(b"pandas") != (prepared.schema.metadata or {}).get(b"pandas"):
        if overwrite:
            return None
        raise SweepError(f"{prepared.layout.manifest} has this grid's hash but not its chunks or columns: it is "
                         f"damaged; move it away and run again (the parts that pass their checks are kept)")
    there, here = (manifest.get("grid") or {}).get("record"), prepared.manifest["grid"].get("record")
    if there != here:
        if overwrite:
            return None
        def shown(r):
            return "all columns" if r is None else f"record = {r}"

        raise SweepError(f"{prepared.outdir} holds results of this grid with other columns ({shown(there)} there, "
                         f"{shown(here)} in this grid); {remedy}")
    if manifest.get("manifest_version") != MANIFEST_VERSION or not schema.remove_metadata().equals(
            prepared.schema.remove_metadata()):
        if overwrite:
            return None
        raise SweepError(f"{prepared.outdir} holds results of this grid in another format (written by sweep "
                         f"{(manifest.get('versions') or {}).get('sweep', '?')}); {remedy}")
    return manifest


def open_results(prepared, writer, *, overwrite=False):
    """Make the results directory this grid's (the writer's setup lock held): keep its manifest if it is
    this grid's, else (with `overwrite`) remove the old results, and write the manifest if there is none."""
    manifest = existing_manifest(prepared, overwrite=overwrite)
    if manifest is not None:
        prepared.manifest = manifest
        return
    if overwrite:
        store.remove_results(prepared.layout)
    prepared.manifest = dict(prepared.manifest, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             versions=versions())
    store.write_manifest(prepared.layout, prepared.manifest, prepared.schema, writer.tmp)


def scan(prepared, chunk_ids=None, *, say, full=True):
    """Split the chunks (those in `chunk_ids`, or all) into done and to do.

    A part is done when it passes `store.check_part` (in full: every page, its run ids); one that does
    not is reported and moved to quarantine/, to be trained again. Parts of chunks this grid does not
    have (another grid's) are reported and moved there too.
    """
    layout = prepared.layout
    known = prepared.manifest["chunks"]
    parts = store.list_parts(layout)
    for cid in sorted(set(parts) - set(known)):
        moved = store.quarantine(layout, parts.pop(cid))
        say(f"sweep: warning: {moved.name} is not a part of this grid; moved to {moved}")
    for path in store.stray_files(layout):
        say(f"sweep: warning: {path} was not written by sweep: Parquet readers of the directory may trip on it")
    done, todo = [], []
    for chunk in prepared.chunks:
        if chunk_ids is not None and chunk.chunk_id not in chunk_ids:
            continue
        path = parts.get(chunk.chunk_id)
        problem = None if path is None else store.check_part(
            path, chunk_id=chunk.chunk_id, n_runs=chunk.n_runs, grid_hash=prepared.grid_hash,
            schema=prepared.schema, full=full)
        if path is not None and problem is None:
            done.append(chunk)
            continue
        if path is not None:
            moved = store.quarantine(layout, path)
            say(f"sweep: warning: part {path.name} {problem}; moved to {moved} and training its runs again")
        todo.append(chunk)
    return done, todo


def run(grid_path, out_root="results", *, jobs=None, backend="threads", quiet=False, overwrite=False,
        chunk_ids=None, shard=None, scheduler=None, stream=None, overrides=None):
    """Train what is missing of a sweep (or of its shard `shard` = (I, N)); return a Summary.

    grid_path: a grid file, or a dict of the same structure; overrides: a list of
    `sweep.grid.overrides.Override` (``--set``), part of the grid (and so of its manifest).

    backend: threads or processes (`jobs` at once on this machine); dask: the
    workers of the Dask scheduler at `scheduler`; cuda: this machine's GPU
    (see `sweep.backends`).
    """
    from sweep import backends

    stream = stream or sys.stderr

    def say(msg):
        print(msg, file=stream, flush=True)

    if backend not in backends.NAMES:
        raise SweepError(f"--backend must be one of {', '.join(backends.NAMES)}, got {backend!r}")
    if shard is not None and overwrite:
        raise SweepError("--overwrite cannot be combined with --shard: one shard would delete the parts of the "
                         "others; remove the results directory first (or run without --shard)")
    if backend == "cuda":
        from sweep.backends.cuda import check

        reason = check()
        if reason:
            raise SweepError(f"--backend cuda: {reason}")
    client = None
    if backend == "dask":  # reach the cluster before anything is written
        from sweep.backends.dask import connect

        client = connect(scheduler)
    try:
        return _run(grid_path, out_root, jobs=jobs, backend=backend, quiet=quiet, overwrite=overwrite,
                    chunk_ids=chunk_ids, shard=shard, client=client, say=say, stream=stream, overrides=overrides)
    finally:
        if client is not None:
            client.close()


def _refuse_nested(out_root):
    """A sweep written inside another's results directory would be read as part of it."""
    here = Path(out_root).resolve()
    for folder in (here, *here.parents):
        if store.is_results_dir(folder):
            raise SweepError(f"--out {out_root} is inside the results directory {folder}, whose readers would take "
                             f"this sweep's parts for its own; give the results root instead (e.g. --out {folder.parent})")


def _run(grid_path, out_root, *, jobs, backend, quiet, overwrite, chunk_ids, shard, client, say, stream, overrides):
    from sweep import backends
    from sweep.lock import Writer

    start = time.perf_counter()
    _refuse_nested(out_root)
    prepared = prepare(grid_path, out_root, overrides)
    if backend == "cuda" and prepared.diagnostics:
        from kernels.cuda import DIAGNOSTICS_ON_CPU

        raise SweepError(f"--backend cuda: {DIAGNOSTICS_ON_CPU} (--backend threads, processes or dask)")
    label = f"sweep: shard {shard[0]}/{shard[1]}: " if shard else "sweep: "
    with Writer(prepared.layout, grid_hash=prepared.grid_hash, shard=shard, warn=say) as writer:
        open_results(prepared, writer, overwrite=overwrite)
        if shard is not None:
            from sweep.plan import chunk_cost
            from sweep.shard import chunks_of

            mine = {c.chunk_id for c in chunks_of(prepared.chunks, *shard, cost=chunk_cost(prepared.grid.datasets))}
            chunk_ids = mine if chunk_ids is None else mine & set(chunk_ids)
        done, todo = scan(prepared, chunk_ids, say=say)  # problems are reported even when quiet
        writer.setup_done()

        total_runs = sum(c.n_runs for c in done + todo)
        if shard is not None and not quiet:
            say(f"{label}{len(done) + len(todo)} of {_plural(len(prepared.chunks), 'part')}, "
                f"{_plural(total_runs, 'run')}")
        if done and not quiet:
            say(f"{label}resuming: {len(done)} of {_plural(len(done) + len(todo), 'part')} already written")
        datasets = prepared.grid.datasets
        with_weights = prepared.weight_columns
        work = [backends.Work(chunk, prepared.runs, datasets[chunk.dataset].X, datasets[chunk.dataset].Y,
                              prepared.params_schema, with_weights, prepared.grid.record, rows=chunk.rows,
                              diagnostics=prepared.diagnostics)
                for chunk in todo]
        if work and backend in ("threads", "processes"):
            _warm_up(sorted({(chunk.dtype, chunk.variant) for chunk in todo}), None if quiet else say)
        progress = Progress(total_runs, sum(c.network_epochs for c in todo), done_runs=sum(c.n_runs for c in done),
                            quiet=quiet, stream=stream, label=label.rstrip(": "))
        trained_runs = trained_net_epochs = converged = 0
        record = prepared.grid.record
        counts_converged = record is None or "converged" in record
        counts_epochs = record is None or "epochs_run" in record
        train_start = time.perf_counter()
        dictionary = prepared.dictionary_columns

        def write(chunk, table):
            store.write_part(prepared.layout, chunk.chunk_id, table, prepared.grid_hash, writer.tmp, dictionary)
            # Without epochs_run recorded, the network-epochs planned (more than trained if runs stopped).
            trained = int(pc.sum(table.column("epochs_run")).as_py()) if counts_epochs else chunk.network_epochs
            return trained, int(pc.sum(table.column("converged")).as_py() or 0) if counts_converged else 0

        def written(chunk, counts):
            nonlocal trained_runs, trained_net_epochs, converged
            trained, chunk_converged = counts
            converged += chunk_converged
            trained_runs += chunk.n_runs
            trained_net_epochs += trained
            progress.update(chunk.n_runs, chunk.network_epochs, trained)

        try:
            if work:
                execute = backends.module(backend).execute
                _write_as_they_come(execute(work, jobs=jobs, backend=backend, client=client, say=say, quiet=quiet),
                                    write, written)
        finally:
            progress.close()
        train_seconds = time.perf_counter() - train_start

    for chunk in done if counts_converged else ():
        table = store.read_part(prepared.layout.part(chunk.chunk_id), columns=["converged"])
        converged += int(pc.sum(table.column(0)).as_py() or 0)
    return Summary(runs=total_runs, runs_trained=trained_runs, chunks_trained=len(todo),
                   converged=converged if counts_converged else None,
                   seconds=train_seconds if work else time.perf_counter() - start,
                   net_epochs=trained_net_epochs, outdir=prepared.outdir, label=label)


WRITERS = min(4, os.cpu_count() or 1)  # parts written at once: Parquet's compression and checksums release the GIL


def _write_as_they_come(results, write, written, writers=WRITERS):
    """write(chunk, table) each (chunk, table) of `results` as it comes, in `writers` threads, with at most
    2 x writers tables waiting; written(chunk, what write returned) in this thread once the part is on
    disk. A write's error is raised here. Stopped by an error or an interrupt, the writes under way are
    finished (a part is whole or absent) and those not begun are dropped."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending = {}
    pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="sweep-writer")

    def settle(futures):
        for future in futures:
            chunk = pending.pop(future)
            written(chunk, future.result())

    try:
        for chunk, table in results:
            pending[pool.submit(write, chunk, table)] = chunk
            del table
            settle([f for f in list(pending) if f.done()])
            if len(pending) >= 2 * writers:
                settle(wait(pending, return_when=FIRST_COMPLETED)[0])
        settle(list(pending))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _warm_up(kinds, say=None, patience=1.5):
    """Compile the kernels of these (dtype, variant) pairs (a variant as `sweep.plan.Chunk.variant`), or load
    them from Numba's cache, before the clocks start; if that takes longer than `patience` seconds (a first
    start compiles: seconds per kernel), say what is going on."""
    import threading

    from kernels import warm_up

    done = threading.Event()
    if say is not None:
        def tell():
            if not done.wait(patience):
                say("sweep: compiling the kernels (first start only: later starts load them from Numba's cache)")
        threading.Thread(target=tell, daemon=True).start()
    try:
        from sweep.params import call_arguments

        for dtype, variant in kinds:
            warm_up((dtype,), **call_arguments(variant))
    finally:
        done.set()

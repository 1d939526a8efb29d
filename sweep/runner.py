"""`sweep run`: plan the chunks, skip those already written, train the rest in
parallel and write each as a Parquet part; `status` reports what is done.
"""
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sweep import store
from sweep.errors import SweepError
from sweep.progress import Progress

MANIFEST_VERSION = 1


@dataclass
class Prepared:
    """A grid resolved into runs and chunks, and where its results go."""

    grid: object
    runs: object  # pandas DataFrame, one row per run
    chunks: list
    outdir: Path
    manifest: dict


@dataclass
class Summary:
    runs: int
    runs_trained: int
    chunks_trained: int
    converged: int
    seconds: float
    net_epochs: int
    outdir: Path
    label: str = "sweep: "

    def text(self):
        share = self.converged / self.runs if self.runs else 0.0
        rate = self.net_epochs / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.label}{self.runs:,} runs ({self.runs_trained:,} trained now in {self.chunks_trained} chunks), "
                f"{share:.1%} converged; {self.seconds:.1f} s, {rate:.3g} network-epochs/s\n"
                f"sweep: results in {self.outdir}  (pandas.read_parquet or sweep.load)")


def versions():
    import numba
    import pandas

    import sweep

    return {"sweep": sweep.__version__, "numba": numba.__version__, "numpy": np.__version__,
            "pandas": pandas.__version__, "pyarrow": pa.__version__, "python": sys.version.split()[0]}


def _grid_hash(runs, chunks):
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk.chunk_id.encode())
    h.update(",".join(sorted(runs["run_id"])).encode())
    return h.hexdigest()[:16]


def prepare(grid_path, out_root="results", *, overwrite=False, create=True):
    """Load and expand the grid, check the results directory against its manifest."""
    from sweep.grid import expand, load_grid
    from sweep.plan import plan_chunks

    grid = load_grid(grid_path)
    runs = expand(grid)
    chunks = plan_chunks(runs, grid.chunk_size)
    outdir = Path(out_root) / grid.name
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "name": grid.name,
        "grid_file": str(grid_path),
        "grid": grid.resolved,
        "grid_hash": _grid_hash(runs, chunks),
        "runs": int(len(runs)),
        "chunks": {c.chunk_id: int(c.n_runs) for c in chunks},
        "chunk_size": int(grid.chunk_size),
    }
    existing = store.read_manifest(outdir) if outdir.exists() else None
    if existing is not None and existing.get("grid_hash") != manifest["grid_hash"]:
        if not overwrite:
            raise SweepError(f"{outdir} holds results of a different grid ({describe_change(existing, manifest)}); "
                             f"re-run with --overwrite to replace them, or give the sweep another name or --out")
    if create:
        store.ensure_writable_dir(outdir)
        if existing is not None and existing.get("grid_hash") != manifest["grid_hash"]:
            store.remove_results(outdir)
            existing = None
        if existing is None:
            manifest.update(created=datetime.now(timezone.utc).isoformat(timespec="seconds"), versions=versions())
            store.write_manifest(outdir, manifest)
        else:
            manifest = existing
    return Prepared(grid, runs, chunks, outdir, manifest)


def describe_change(old, new):
    """A short account of how two manifests' grids differ."""
    a, b = old.get("grid") or {}, new.get("grid") or {}
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if not changed:
        return f"{old.get('runs')} runs there, {new.get('runs')} in this grid"
    shown = ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")
    return f"changed: {shown}; {old.get('runs')} runs there, {new.get('runs')} in this grid"


def scan(prepared, chunk_ids=None, report=None):
    """Split the chunks into done and to-do; quarantine corrupt parts and clean temporaries."""
    wanted = [c for c in prepared.chunks if chunk_ids is None or c.chunk_id in chunk_ids]
    store.clean_temporaries(prepared.outdir, {c.chunk_id for c in wanted})
    parts = store.list_parts(prepared.outdir)
    done, todo = [], []
    for chunk in wanted:
        path = parts.get(chunk.chunk_id)
        if path is None:
            todo.append(chunk)
            continue
        problem = store.check_part(path, chunk.n_runs)
        if problem is None:
            done.append(chunk)
        else:
            moved = store.quarantine(prepared.outdir, path)
            if report:
                report(f"sweep: warning: part {path.name} is corrupt ({problem}); moved to {moved} and re-running it")
            todo.append(chunk)
    return done, todo


def _params_schema(runs):
    """One Arrow schema for the parameter columns of every part (inferred from a
    real row: an empty object column would infer as null)."""
    return pa.Schema.from_pandas(runs.iloc[:1].reset_index(drop=True), preserve_index=False)


def _train_and_write(chunk_runs, X, Y, outdir, chunk_id, params_schema, with_weights, threads):
    """Worker: one chunk from runs to a part file.

    Returns (runs, network-epochs planned, network-epochs trained: fewer when runs stop early)."""
    from sweep.execute import train_chunk

    table = train_chunk(chunk_runs, X, Y, params_schema=params_schema, with_weights=with_weights,
                        threads=threads)
    store.write_part(outdir, chunk_id, table)
    return len(chunk_runs), int(chunk_runs["epochs"].sum()), int(pc.sum(table.column("epochs_run")).as_py())


BACKENDS = ("threads", "processes", "dask", "cuda")


def run(grid_path, out_root="results", *, jobs=None, backend="threads", quiet=False, overwrite=False,
        chunk_ids=None, shard=None, scheduler=None, stream=None):
    """Train what is missing of a sweep (or of its shard `shard` = (I, N)); return a Summary.

    backend: threads or processes (joblib, `jobs` at once on this machine);
    dask: the chunks go to the workers of the Dask scheduler at `scheduler`,
    which send their rows back; this process writes the parts; cuda: the
    chunks train on this machine's GPU, several chunks of one shape per launch.
    """
    stream = stream or sys.stderr

    def say(msg):
        print(msg, file=stream, flush=True)

    if backend not in BACKENDS:
        raise SweepError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if shard is not None and overwrite:
        raise SweepError("--overwrite cannot be combined with --shard: one shard would delete the parts of the "
                         "others; remove the results directory first (or run without --shard)")
    if backend == "cuda":
        from kernels.cuda import cuda_available

        ok, reason = cuda_available()
        if not ok:
            raise SweepError(f"--backend cuda: {reason}")
    client = None
    if backend == "dask":  # reach the cluster before anything is written
        from sweep.dask_backend import connect

        client = connect(scheduler)
    try:
        return _run(grid_path, out_root, jobs=jobs, backend=backend, quiet=quiet, overwrite=overwrite,
                    chunk_ids=chunk_ids, shard=shard, client=client, say=say, stream=stream)
    finally:
        if client is not None:
            client.close()


def _run(grid_path, out_root, *, jobs, backend, quiet, overwrite, chunk_ids, shard, client, say, stream):
    start = time.perf_counter()
    prepared = prepare(grid_path, out_root, overwrite=overwrite)
    if shard is not None:
        from sweep.plan import chunk_cost
        from sweep.shard import chunks_of

        mine = {c.chunk_id for c in chunks_of(prepared.chunks, *shard, cost=chunk_cost(prepared.grid.datasets))}
        chunk_ids = mine if chunk_ids is None else mine & set(chunk_ids)
    done, todo = scan(prepared, chunk_ids, report=say)  # corrupt parts are reported even when quiet
    runs = prepared.runs
    total_runs = sum(c.n_runs for c in done + todo)
    label = f"sweep: shard {shard[0]}/{shard[1]}: " if shard else "sweep: "
    if shard is not None and not quiet:
        say(f"{label}{len(done) + len(todo)} of {len(prepared.chunks)} parts, {total_runs:,} runs")
    if done and not quiet:
        say(f"{label}resuming: {len(done)} of {len(done) + len(todo)} parts already written")

    schema = _params_schema(runs)
    with_weights = bool(runs["save_weights"].any())
    work = [(chunk, runs.iloc[chunk.rows], prepared.grid.datasets[chunk.dataset]) for chunk in todo]
    if work and backend in ("threads", "processes"):
        _warm_up(sorted({chunk.dtype for chunk in todo}), None if quiet else say)
    progress = Progress(total_runs, sum(c.network_epochs for c in todo), done_runs=sum(c.n_runs for c in done),
                        quiet=quiet, stream=stream, label=label.rstrip(": "))
    trained_runs = trained_net_epochs = 0
    train_start = time.perf_counter()
    try:
        if work:
            if backend == "dask":
                from sweep.dask_backend import execute
            elif backend == "cuda":
                execute = _execute_cuda
            else:
                execute = _execute_local
            for n_runs, planned, trained in execute(work, prepared.outdir, schema, with_weights, jobs=jobs,
                                                    backend=backend, client=client, say=say, quiet=quiet):
                trained_runs += n_runs
                trained_net_epochs += trained
                progress.update(n_runs, planned, trained)
    finally:
        progress.close()
    train_seconds = time.perf_counter() - train_start

    converged = 0
    parts = store.list_parts(prepared.outdir)
    for chunk in done + todo:
        col = pq.read_table(parts[chunk.chunk_id], columns=["converged"]).column(0)
        converged += int(pc.sum(col).as_py() or 0)
    return Summary(runs=total_runs, runs_trained=trained_runs, chunks_trained=len(todo), converged=converged,
                   seconds=train_seconds if work else time.perf_counter() - start,
                   net_epochs=trained_net_epochs, outdir=prepared.outdir, label=label)


def _warm_up(dtypes, say=None, patience=1.5):
    """Compile the kernels, or load them from Numba's cache, before the clocks start; if that takes
    longer than `patience` seconds (a first start compiles), say what is going on."""
    import threading

    from kernels import warm_up

    done = threading.Event()
    if say is not None:
        def tell():
            if not done.wait(patience):
                say("sweep: compiling the kernels (first start only: later starts load them from Numba's cache)")
        threading.Thread(target=tell, daemon=True).start()
    try:
        warm_up(dtypes)
    finally:
        done.set()


def _execute_local(work, outdir, schema, with_weights, *, jobs, backend, **_):
    """Train the chunks on this machine with joblib; yield (runs, planned, trained) per chunk as it lands."""
    from joblib import Parallel, delayed

    jobs = max(1, int(jobs or os.cpu_count() or 1))
    # Few chunks per worker: split each kernel call over threads too, so the last chunks do not leave
    # cores idle (at most 2 threads per core meanwhile). Results never depend on the thread count.
    kernel_threads = 1 if len(work) >= 2 * jobs else min(jobs, -(-2 * jobs // len(work)))
    tasks = [delayed(_train_and_write)(chunk_runs, data.X, data.Y, outdir, chunk.chunk_id, schema, with_weights,
                                       kernel_threads)
             for chunk, chunk_runs, data in work]
    parallel = Parallel(n_jobs=min(jobs, len(tasks)), backend="threading" if backend == "threads" else "loky",
                        return_as="generator_unordered")
    yield from parallel(tasks)


GPU_BATCH_LANES = 1 << 18  # runs per GPU launch: enough threads to fill a large GPU many times over


def _execute_cuda(work, outdir, schema, with_weights, *, jobs, say, quiet, **_):
    """Train the chunks on the GPU: consecutive chunks of one shape are trained in one launch of up
    to GPU_BATCH_LANES runs (a chunk of 2,048 runs would fill a few of a GPU's SMs) and their rows
    split back into the chunks' parts, so the parts are those of a CPU run. Two host threads take
    turns, so one batch's weights, rows and parts are made while the other trains."""
    import pandas as pd
    from joblib import Parallel, delayed

    from kernels.cuda import cuda_available

    if not quiet:
        say(f"sweep: training on {cuda_available()[1]}")
    def variant(item):
        # The GPU kernel is compiled without the momentum or the BCE code when no lane of a launch needs
        # it, and the two variants may round differently: only chunks that would get the same variant
        # alone share a launch, so a chunk's rows never depend on the chunks trained beside it.
        chunk, chunk_runs, _ = item
        return chunk.shape, bool((chunk_runs["momentum"] != 0).any()), bool((chunk_runs["loss"] == "bce").any())

    batches, current, lanes = [], [], 0
    for item in sorted(work, key=lambda item: repr(variant(item))):
        chunk = item[0]
        if current and (variant(item) != variant(current[0]) or lanes + chunk.n_runs > GPU_BATCH_LANES):
            batches.append(current)
            current, lanes = [], 0
        current.append(item)
        lanes += chunk.n_runs
    if current:
        batches.append(current)

    def train_batch(batch):
        from sweep.execute import train_chunk

        data = batch[0][2]
        runs = pd.concat([chunk_runs for _, chunk_runs, _ in batch])
        table = train_chunk(runs, data.X, data.Y, params_schema=schema, with_weights=with_weights, device="cuda")
        done, offset = [], 0
        for chunk, _, _ in batch:
            part = table.slice(offset, chunk.n_runs)
            offset += chunk.n_runs
            store.write_part(outdir, chunk.chunk_id, part)
            done.append((chunk.n_runs, chunk.network_epochs, int(pc.sum(part.column("epochs_run")).as_py())))
        return done

    parallel = Parallel(n_jobs=min(2, len(batches)), backend="threading", return_as="generator_unordered")
    for done in parallel(delayed(train_batch)(batch) for batch in batches):
        yield from done


def status(target, out_root="results"):
    """Lines describing how much of a sweep is written (target: grid file or results dir)."""
    target = Path(target)
    if target.is_dir():
        manifest = store.read_manifest(target)
        if manifest is None:
            raise SweepError(f"{target} is not a sweep results directory (no {store.MANIFEST})")
        outdir, chunk_runs = target, manifest["chunks"]
    else:
        prepared = prepare(target, out_root, create=False)
        outdir, chunk_runs = prepared.outdir, {c.chunk_id: c.n_runs for c in prepared.chunks}
    parts = store.list_parts(outdir)
    done = {cid: n for cid, n in chunk_runs.items()
            if cid in parts and store.check_part(parts[cid], n) is None}
    total = sum(chunk_runs.values())
    runs_done = sum(done.values())
    lines = [f"{outdir}: {len(done)}/{len(chunk_runs)} parts, {runs_done:,}/{total:,} runs done"
             + (" (complete)" if runs_done == total else "")]
    lines.extend(_slurm_lines(outdir))
    return lines, runs_done == total


def _slurm_lines(outdir):
    """One line per shard of the SLURM job written for this directory, if any."""
    from sweep import slurm

    record = slurm.read_tasks(outdir)
    if not record:
        return []
    manifest = store.read_manifest(outdir) or {}
    if record.get("grid_hash") != manifest.get("grid_hash"):
        return [f"  ({slurm.SLURM_DIR}/ was written for another grid: run sweep slurm again)"]
    queued = slurm.queue_states(manifest.get("name", ""))
    jobs = record.get("jobs") or []
    lines = [f"  SLURM array of {record['tasks']} tasks" + (f", last job {jobs[-1]['job_id']}" if jobs else
                                                          ", not submitted")]
    for index, done, parts in slurm.shard_progress(outdir, record):
        state = queued.get(index - 1)
        note = "complete" if done == parts else (state.lower() if state else "incomplete" + (
            ", not in the queue" if jobs else ""))
        lines.append(f"  shard {index}/{record['tasks']} (task {index - 1}): {done}/{parts} parts, {note}")
    return lines

"""`--backend dask`: train the chunks on the workers of a Dask cluster.

dask.distributed directly (not joblib's Dask backend): one future per
chunk, keyed by its chunk_id, collected with `as_completed`, so every part
is written the moment its rows arrive, a worker that dies only costs the
chunks it held (the scheduler re-runs them elsewhere, up to
``distributed.scheduler.allowed-failures`` times), and failures reach us as
exceptions we can name.

Workers only compute: each trains a chunk with the kernels and sends its
rows back as an Arrow table (a few hundred bytes per run). The runner
writes the parts, through the same atomic renames as a local run, so the
workers need the same `sweep` installed but no access to the results
directory, and resuming, progress and the rows are those of a local run.
"""
from sweep.errors import SweepError


def connect(scheduler):
    """A Client of the scheduler whose workers can run this sweep, or a one-line SweepError."""
    client = _client(scheduler)
    try:
        _check_workers(client)
    except BaseException:
        client.close()
        raise
    return client


def _client(scheduler):
    try:
        from dask.distributed import Client
    except ImportError:
        raise SweepError("--backend dask needs dask.distributed: pip install 'dask[distributed]' (in a clone of "
                         "sweep: pip install -e '.[dask]')") from None
    if not scheduler:
        import dask

        scheduler = dask.config.get("scheduler-address", None)
    if not scheduler:
        raise SweepError("--backend dask needs the scheduler's address: --scheduler tcp://HOST:PORT "
                         "(or DASK_SCHEDULER_ADDRESS)")
    import dask

    timeout = dask.config.get("distributed.comm.timeouts.connect")  # DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {str(exc).splitlines()[0]}") from None


def _worker_versions():
    """The versions a row depends on (of `sweep.runner.versions`), here or on a worker."""
    from sweep.runner import ROW_VERSIONS, versions

    return {name: version for name, version in versions().items() if name in ROW_VERSIONS}


def _check_workers(client):
    """Refuse workers whose sweep, numba or numpy differ from ours: their rows would differ."""
    ours = _worker_versions()
    try:
        theirs = client.run(_worker_versions)
    except Exception as exc:  # e.g. workers that cannot import sweep at all
        raise SweepError(f"the Dask workers cannot run sweep ({type(exc).__name__}: {exc}); install the same "
                         f"sweep on every worker") from None
    if not theirs:
        raise SweepError(f"the Dask scheduler at {client.scheduler.address} has no workers")
    for worker, versions in sorted(theirs.items()):
        if versions != ours:
            diff = ", ".join(f"{k} {versions.get(k)} (here {v})" for k, v in ours.items() if versions.get(k) != v)
            raise SweepError(f"Dask worker {worker} runs {diff}: install the same versions everywhere, "
                             f"or the rows would not match a local run")


def execute(work, *, say, quiet, client, **_context):
    """Train `work` (a list of sweep.backends.Work) on the workers of `client` (see `connect`); yield
    (chunk, table) per chunk as its rows arrive."""
    from dask.distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    from sweep.backends import RESUME
    from sweep.backends.local import train

    if not quiet:
        workers = client.scheduler_info()["workers"]
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        say(f"sweep: Dask scheduler {client.scheduler.address}: {len(workers)} workers, {threads} threads")
    futures = {}
    for item in work:
        future = client.submit(train, item, key=f"sweep-chunk-{item.chunk.chunk_id}", pure=False, retries=0)
        futures[future] = item.chunk
    try:
        for future in as_completed(list(futures), loop=client.loop):
            chunk = futures[future]
            try:
                table = future.result()
            except KilledWorker:
                raise SweepError(f"Dask workers died while training chunk {chunk.chunk_id} too many times "
                                 f"(distributed.scheduler.allowed-failures); {RESUME}") from None
            except (FutureCancelledError, OSError) as exc:
                raise SweepError(f"lost the Dask cluster while training chunk {chunk.chunk_id} "
                                 f"({type(exc).__name__}: {exc}); {RESUME}") from None
            del futures[future]
            yield chunk, table
    finally:
        if futures:
            client.cancel(list(futures))

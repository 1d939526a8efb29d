"""`--backend threads` and `--backend processes`: the chunks trained on this machine.

Threads share this process (the kernels release the GIL). Processes are
spawned workers that only compute and send each chunk's rows back; they die
with this process however it ends (kill -9 included): Linux's parent-death
signal where there is one, and everywhere a watchdog thread that exits the
worker when its parent is gone.
"""
import os
import threading
import time


def train(work, threads=1):
    """One chunk's rows (an Arrow table)."""
    from sweep.execute import train_chunk

    return train_chunk(work.runs, work.X, work.Y, params_schema=work.params_schema,
                       with_weights=work.with_weights, record=work.record, diagnostics=work.diagnostics,
                       threads=threads)


def _kernel_threads(n_work, jobs):
    # Few chunks per worker: split each kernel call over threads too, so the last chunks do not leave
    # cores idle (at most 2 threads per core meanwhile). Results never depend on the thread count.
    return 1 if n_work >= 2 * jobs else min(jobs, -(-2 * jobs // n_work))


def execute(work, *, jobs, backend="threads", **_context):
    """Train `work` with `jobs` workers; yield (chunk, table) as each chunk is done."""
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    threads = _kernel_threads(len(work), jobs)
    if backend == "processes":
        yield from _processes(work, jobs, threads)
        return
    if min(jobs, len(work)) == 1:  # one worker: in this thread, without importing joblib (60 ms of a start-up)
        for item in work:
            yield item.chunk, train(item, threads)
        return
    from joblib import Parallel, delayed

    def one(item):
        return item.chunk, train(item, threads)

    parallel = Parallel(n_jobs=min(jobs, len(work)), backend="threading", return_as="generator_unordered")
    yield from parallel(delayed(one)(item) for item in work)


def _processes(work, jobs, threads):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from sweep.backends import RESUME
    from sweep.errors import SweepError

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=context,
                               initializer=_die_with_parent, initargs=(os.getpid(),))
    pending = {}
    try:
        pending = {pool.submit(train, item, threads): item.chunk for item in work}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk = pending.pop(future)
                try:
                    table = future.result()
                except BrokenProcessPool:
                    raise SweepError(f"a worker process died while training chunk {chunk.chunk_id} (killed, or out of "
                                     f"memory?); {RESUME}") from None
                yield chunk, table
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):  # interrupted: stop now, not after the chunk
            if pending and process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _die_with_parent(parent):
    """In a worker: end when the process that started it ends."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the signal was set up
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="sweep-parent-watch").start()

"""`--backend cuda`: the chunks trained on this machine's NVIDIA GPU (numba-cuda).

Consecutive chunks of one shape and kernel variant are trained in one launch
of up to `BATCH_LANES` runs (a chunk of 2,048 runs would fill a few of a
GPU's SMs) and their rows split back into the chunks, so the parts are those
of a CPU run. Two host threads take turns, so one batch's weights and rows
are made while the other trains.
"""
BATCH_LANES = 1 << 18  # runs per GPU launch: enough threads to fill a large GPU many times over


def check():
    """A one-line reason when no GPU can be used, else None."""
    from kernels.cuda import cuda_available

    ok, reason = cuda_available()
    return None if ok else reason


def _variant(item):
    # The GPU kernel is compiled without the momentum or the BCE code when no lane of a launch needs
    # it, and the two variants may round differently: only chunks that would get the same variant
    # alone share a launch, so a chunk's rows never depend on the chunks trained beside it.
    return (item.chunk.shape, bool((item.runs["momentum"] != 0).any()), bool((item.runs["loss"] == "bce").any()))


def batches(work, lanes=BATCH_LANES):
    """`work` grouped into launches: chunks of one variant, at most `lanes` runs each."""
    out, current, n = [], [], 0
    for item in sorted(work, key=lambda item: repr(_variant(item))):
        if current and (_variant(item) != _variant(current[0]) or n + item.chunk.n_runs > lanes):
            out.append(current)
            current, n = [], 0
        current.append(item)
        n += item.chunk.n_runs
    if current:
        out.append(current)
    return out


def _train_batch(batch):
    import pandas as pd

    from sweep.execute import train_chunk

    first = batch[0]
    runs = pd.concat([item.runs for item in batch])
    table = train_chunk(runs, first.X, first.Y, params_schema=first.params_schema,
                        with_weights=first.with_weights, record=first.record, diagnostics=first.diagnostics,
                        device="cuda")
    out, offset = [], 0
    for item in batch:
        out.append((item.chunk, table.slice(offset, item.chunk.n_runs)))
        offset += item.chunk.n_runs
    return out


def execute(work, *, say, quiet, **_context):
    """Train `work` on the GPU; yield (chunk, table) per chunk as its launch ends."""
    from joblib import Parallel, delayed

    from kernels.cuda import cuda_available

    if not quiet:
        say(f"sweep: training on {cuda_available()[1]}")
    groups = batches(work)
    parallel = Parallel(n_jobs=min(2, len(groups)), backend="threading", return_as="generator_unordered")
    for done in parallel(delayed(_train_batch)(batch) for batch in groups):
        yield from done

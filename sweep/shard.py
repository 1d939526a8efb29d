"""Shards: a deterministic partition of a sweep's chunks into N parts.

Shard I of N (1-based, ``--shard I/N``) trains only its own chunks and
writes only their parts, so N processes (SLURM array tasks, or any other
scheduler's) can share one results directory. Chunks are dealt largest
first to the least loaded shard (ties to the lowest shard, then by
chunk_id), by cost = network-epochs x the relative cost of one network-epoch
of the chunk's shape: the same chunks and N always give the same shards.

Inside a SLURM array task with no ``--shard``, the shard is the task's
place in the array: I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1,
N = SLURM_ARRAY_TASK_COUNT. (A task re-submitted alone is an array of one:
the scripts `sweep slurm` writes therefore pass ``--shard`` explicitly.)
"""
import heapq
import os
import re

from sweep.errors import SweepError

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text):
    """'I/N' -> (I, N), with 1 <= I <= N."""
    m = _SHARD_RE.match(str(text))
    if not m:
        raise SweepError(f"--shard {text!r} is not of the form I/N (for example 2/8: the second of 8 shards)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise SweepError(f"--shard {text!r}: expected 1 <= I <= N, got I={index}, N={count}")
    return index, count


def shard_from_env(environ=None):
    """(I, N) of the SLURM array task this process runs in, or None outside one."""
    env = os.environ if environ is None else environ
    task = env.get("SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    try:
        task_id = int(task)
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
        task_min = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    except (KeyError, ValueError):
        raise SweepError("inside a SLURM array task but SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT/"
                         "SLURM_ARRAY_TASK_MIN are not integers; pass --shard I/N") from None
    index = task_id - task_min + 1
    if not 1 <= index <= count:
        raise SweepError(f"SLURM array task {task_id} (min {task_min}, count {count}) is not a contiguous "
                         f"0-based or 1-based array: pass --shard I/N explicitly")
    return index, count


def assign(chunks, count, cost=None):
    """{chunk_id: shard index 1..count}; `cost(chunk)` defaults to its network-epochs."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    cost = cost or (lambda c: c.network_epochs)
    order = sorted(chunks, key=lambda c: (-cost(c), c.chunk_id))
    loads = [(0.0, i) for i in range(1, count + 1)]  # (load, shard): a heap, ties to the lowest shard
    heapq.heapify(loads)
    out = {}
    for chunk in order:
        load, index = heapq.heappop(loads)
        out[chunk.chunk_id] = index
        heapq.heappush(loads, (load + cost(chunk), index))
    return out


def chunks_of(chunks, index, count, cost=None):
    """The chunks of shard `index` of `count`, in plan order."""
    owner = assign(chunks, count, cost)
    return [c for c in chunks if owner[c.chunk_id] == index]

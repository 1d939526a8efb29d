"""Plan a sweep: group its runs into chunks, estimate its cost, describe it.

Chunks. One kernel call trains one chunk: runs that share a shape, i.e. the
same (dataset, hidden, epochs, dtype, checkpoints) and variant
(`sweep.params.CALL`: activation, output, bias, scaling, reduction,
optimizer, batch_size, shuffle), since the data, the layer sizes, the epoch
loop, the checkpoint list, the compiled kernel and the update scheme are
shared by all lanes of a call; every other parameter (lr, loss, init_scale,
seed, momentum, beta1, weight_decay...) may differ from lane to lane. Within
a shape the runs are sorted by (init, seed, run_id) -- runs of one seed
share their initial weight draw, so they are kept together -- and cut into
the fewest chunks of at most `chunk_size`
lanes, of sizes that differ by at most one. Without a `chunk_size` in the
grid, a shape's chunks hold `auto_chunk_size` lanes: 2,048, or more for runs
so cheap that 2,048 of them would train in a few milliseconds (up to 65,536
lanes of about the work of 2,048 XOR 2-4-1 runs of 2,048 epochs), since each
chunk costs a part file and its bookkeeping. `chunk_id` is 16 hex digits of the sha256 of the
chunk's sorted run ids (one per line), so the same runs give the same
chunks whatever the order of the grid file. Shapes come in a fixed order:
by dataset, hidden, epochs, dtype, checkpoints, then the variant.

Estimate. `calibrate` times real kernel calls on one thread: up to 512
lanes (runs of the plan, with their own initial weights and
hyperparameters) of each of the three shapes expected to take longest
(network-epochs x samples x hidden x (inputs + 3), about 2 to 3 times more
with minibatches: `_shape_cost`), for 200 epochs or more,
until a call takes 0.1 s, after a 2-epoch warm-up call that compiles the
kernel or loads it from Numba's cache; a shape is a data set, hidden width,
dtype and batch size. Other shapes take the rate measured on the longest
one, scaled by their cost. The estimate divides each
shape's network-epochs by its rate times the workers that can be kept busy
(the CPU count, or --jobs; fewer when there are fewer lanes than one
kernel tile, 64 in float64, per worker). Runs that stop early (early_stop, divergence) make it an upper
bound; writing the results is not counted.
"""
import hashlib
import os
import textwrap
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from kernels.vocab import TILE_LANES  # lanes per kernel tile: fewer per worker leave workers idle
from sweep.grid.ids import id_array, id_order, joined_ids
from sweep.params import CALL, DEFAULTS, call_arguments

SHAPE_KEY = ("dataset", "hidden", "epochs", "dtype", "checkpoints") + CALL


@dataclass(frozen=True, eq=False)
class Chunk:
    """A group of runs of one shape, trained by one kernel call."""

    chunk_id: str
    dataset: str
    hidden: int
    epochs: int
    dtype: str
    checkpoints: object  # int (count) or tuple of epochs
    rows: np.ndarray  # positions of the runs in the runs table (iloc), in lane order
    ids: np.ndarray  # their run ids, 'S16' (by init, seed, run_id)
    variant: tuple = tuple(DEFAULTS[name] for name in CALL)  # the values of sweep.params.CALL

    @property
    def n_runs(self):
        return len(self.ids)

    @property
    def run_ids(self):
        """The run ids as a tuple of str, in lane order."""
        return tuple(self.ids.astype(str).tolist())

    @property
    def network_epochs(self):
        """Upper bound of the work: runs x epochs (fewer when runs stop early)."""
        return self.n_runs * self.epochs

    @property
    def shape(self):
        return (self.dataset, self.hidden, self.epochs, self.dtype, self.checkpoints, self.variant)


def chunk_id(run_ids, ordered=False):
    """16 hex digits of the sha256 of the sorted run ids (str or 'S16'), one per line (ordered: they are
    sorted already)."""
    ids = np.asarray(run_ids, dtype="S16")
    return hashlib.sha256(joined_ids(ids if ordered else np.sort(ids), b"\n")).hexdigest()[:16]


AUTO_LANES = 2048  # lanes per chunk without chunk_size, at least...
AUTO_MAX_LANES = 65536  # ...and at most
AUTO_WORK = 2048 * 2048 * 80  # network-epochs x _shape_cost of a chunk: 2,048 XOR 2-4-1 runs of 2,048 epochs


def auto_chunk_size(epochs, n_samples, n_inputs, hidden):
    """Lanes per chunk of a shape when the grid gives no chunk_size (see the module docstring)."""
    work = max(1, epochs) * _shape_cost(n_samples, n_inputs, hidden)
    return int(min(AUTO_MAX_LANES, max(AUTO_LANES, AUTO_WORK // work)))


def _shape_sort_key(key):
    dataset, hidden, epochs, dtype, checkpoints, *variant = key
    ck = (0, checkpoints, ()) if isinstance(checkpoints, int) else (1, 0, tuple(checkpoints))
    return (str(dataset), int(hidden), int(epochs), str(dtype), ck, tuple(str(v) for v in variant))


def _shape_groups(runs):
    """{shape key (the values of SHAPE_KEY): the rows of its runs}. Columns that hold one value for every
    run (most of them: a map of 16.8 million runs varies two learning rates) are left out of the group-by."""
    varying = [name for name in SHAPE_KEY if not _one_value(runs[name])]
    first = {name: runs[name].iloc[:1].tolist()[0] for name in SHAPE_KEY}  # Python values, as group-by keys are
    if not varying:
        return {tuple(first[name] for name in SHAPE_KEY): np.arange(len(runs))}
    groups = runs.groupby(varying, sort=False, dropna=False, observed=True).indices
    out = {}
    for key, rows in groups.items():
        key = key if len(varying) > 1 else (key,)
        values = dict(first, **{n: v.item() if isinstance(v, np.generic) else v for n, v in zip(varying, key)})
        out[tuple(values[name] for name in SHAPE_KEY)] = rows
    return out


def _one_value(column):
    """Whether a column of the runs table holds one value for every run (a name, a number; not a list)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        return codes.min() == codes.max() >= 0
    values = column.to_numpy()
    return values.dtype.kind in "biu" and values.min() == values.max()


def plan_chunks(runs, chunk_size, datasets=None, order=None):
    """The chunks of a runs table (see the module docstring), in a deterministic order.

    chunk_size: lanes per chunk at most, or None for `auto_chunk_size` (then `datasets`, name -> Dataset,
    gives each shape's data set). order: the permutation that sorts the run ids (`sweep.grid.ids.id_order`),
    when the caller has it."""
    if chunk_size is not None:
        chunk_size = int(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if len(runs) == 0:
        return []
    groups = _shape_groups(runs)
    ids = id_array(runs["run_id"])
    if order is None:
        order = id_order(ids)
    keys = sorted(groups, key=_shape_sort_key)
    label = np.empty(len(runs), dtype=np.int16 if len(keys) < 2**15 else np.int64)
    for g, key in enumerate(keys):
        label[groups[key]] = g
    # Each shape's runs in the order of their ids (a stable sort of small integers is a radix sort).
    by_id = order[np.argsort(label[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum([len(groups[key]) for key in keys])])
    # Lanes sharing (init, seed) share their weight draw: keep them in one chunk. Sorted by init (the rank
    # of its name), then seed, then run id (a stable sort keeps the order by id among equal keys).
    inits = pd.Categorical(runs["init"])
    rank = np.argsort(np.argsort(np.asarray(inits.categories, dtype=str)))[inits.codes]
    draw = rank.astype(np.int64) << 32 | runs["seed"].to_numpy().astype(np.int64)  # seeds are < 2**32
    place = np.empty(len(runs), dtype=np.int64)  # of each run's id among all the ids, sorted
    place[order] = np.arange(len(runs))
    chunks = []
    for g, key in enumerate(keys):
        rows = by_id[starts[g]:starts[g + 1]]
        rows = rows[np.argsort(draw[rows], kind="stable")]
        dataset, hidden, epochs, dtype, checkpoints, *model = key
        lanes = chunk_size or auto_chunk_size(int(epochs), *datasets[dataset].X.shape, int(hidden))
        n_chunks = -(-rows.size // lanes)
        variant = tuple(call_arguments(model).values())
        for part in np.array_split(rows, n_chunks):
            chunk_ids = ids[part]
            ordered = ids[order[np.sort(place[part])]]
            chunks.append(Chunk(chunk_id(ordered, ordered=True), str(dataset), int(hidden), int(epochs), str(dtype),
                                checkpoints if isinstance(checkpoints, tuple) else int(checkpoints),
                                part, chunk_ids, variant))
    return chunks


# --------------------------------------------------------------------------- estimate

@dataclass
class Calibration:
    """Measured speed of one shape: network-epochs per second on one worker."""

    dataset: str
    hidden: int
    dtype: str
    lanes: int
    epochs: int
    seconds: float
    rate: float  # network-epochs / s / worker
    batch_size: int = 0  # of the runs timed: minibatches cost more per epoch than the full batch
    diagnostics: bool = False  # of the runs timed: a Hessian's largest eigenvalue per state costs far more


@dataclass
class Estimate:
    seconds: float
    workers: int
    busy_workers: int
    calibrations: list
    warmup_seconds: float
    rates: dict = None  # `_cost_key` -> network-epochs / s / worker, measured or scaled
    device: str = "cpu"  # or the GPU's name: an estimate of --backend cuda
    host_seconds: float = 0.0  # of `seconds`: the work outside the kernel (initial weights, rows, parts)

    def chunk_seconds(self, chunk):
        """Seconds one worker takes for `chunk` (an upper bound with early stop)."""
        return chunk.network_epochs / self.rates[_cost_key(chunk)]


DIAGNOSTICS_LANES, DIAGNOSTICS_EPOCHS = 16, 10  # the first call timed of a shape with diagnostics


def _shape_cost(n_samples, n_inputs, hidden, batch_size=0, diagnostics=False):
    """Relative cost of one network-epoch, for uncalibrated shapes: a forward and backward pass over the data;
    with minibatches one more, and an update per batch (online XOR: about 3 times the full batch's); with
    diagnostics, the Hessian-vector products of the sharpness (about P of them for P parameters, at most
    ~64 by Lanczos beyond kernels/hessian.py's DENSE_MAX) and a dense eigensolver's P^3."""
    cost = n_samples * hidden * (n_inputs + 3)
    if batch_size > 0:
        cost *= 2 + -(-n_samples // batch_size) / n_samples
    if diagnostics:
        from kernels.hessian import DENSE_MAX

        p = n_inputs * hidden + 2 * hidden + 1
        cost += 3 * min(p, DENSE_MAX) * n_samples * hidden * (n_inputs + 3) + min(p, DENSE_MAX) ** 3
    return cost


def _cost_key(chunk):
    """What a chunk's cost per network-epoch depends on: (dataset, hidden, dtype, batch_size, diagnostics)."""
    return (chunk.dataset, chunk.hidden, chunk.dtype, int(chunk.variant[CALL.index("batch_size")]),
            bool(chunk.variant[CALL.index("diagnostics")]))


def calibrate(grid, runs, chunks, *, lanes=512, epochs=200, max_shapes=3, workers=None, min_seconds=0.1,
              device="cpu"):
    """Time real kernel calls; return an `Estimate` of the whole sweep's wall time.

    device: "cpu" (the CPU kernels, `workers` chunks at once, `lanes` lanes timed per shape) or "cuda"
    (this machine's GPU: one launch at a time, timed at the width of a real launch, as many runs of
    the shape as `sweep.backends.cuda` puts in one). Raises ImportError when the kernels cannot be
    imported.
    """
    from kernels.init import initial_lanes
    from sweep.datasets import dataset_arrays
    from sweep.execute import lane_hyperparameters, model_arguments

    if device == "cuda":
        from kernels.cuda import train_cuda
        from sweep.backends.cuda import BATCH_LANES

        def trainer(*args, threads, **kwargs):
            return train_cuda(*args, **kwargs)
        workers = 1
    else:
        from kernels import train as trainer
    workers = int(workers or os.cpu_count() or 1)
    # work per `_cost_key`: epochs differ in count only, not in cost per epoch
    work, rows = {}, {}
    for c in chunks:
        key = _cost_key(c)
        work[key] = work.get(key, 0) + c.network_epochs
        rows.setdefault(key, []).append(c)

    def expected_cost(key):  # the shapes that will take longest are timed
        X, _ = dataset_arrays(grid, key[0])
        return work[key] * _shape_cost(X.shape[0], X.shape[1], *key[1:2], *key[3:])

    order = sorted(work, key=lambda k: (-expected_cost(k), k))
    warm_start = time.perf_counter()
    measured = []
    for key in order[:max_shapes]:
        dataset, hidden, dtype, batch_size, diagnostics = key
        biggest = max(rows[key], key=lambda c: c.n_runs)
        if device == "cuda":  # a launch holds chunks of one shape, up to BATCH_LANES runs
            pool = np.concatenate([c.rows for c in rows[key]])
            n_lanes = min(BATCH_LANES, pool.size)
        else:
            pool = biggest.rows
            # A state with diagnostics costs 100 times a plain one or more: start small, grow to min_seconds.
            n_lanes = min(DIAGNOSTICS_LANES if diagnostics else lanes, pool.size)
        X, Y = dataset_arrays(grid, dataset)

        def lanes_of(n):
            """(the n runs timed, spread over the pool; their initial weights; their hyperparameters)"""
            sample = runs.iloc[pool[np.linspace(0, pool.size - 1, n).astype(np.int64)]]
            nets = initial_lanes(sample["init"].to_numpy(object), sample["seed"].to_numpy(),
                                 sample["init_scale"].to_numpy(float), sample["bias_init"].to_numpy(float),
                                 X.shape[1], hidden, np.dtype(dtype))
            # As `sweep run` passes them; early_stop off: the cost of every epoch is measured.
            hyper = dict(lane_hyperparameters(sample), **model_arguments(sample), early_stop=np.zeros(n, dtype=bool),
                         checkpoints=10, threads=1)
            return nets, hyper

        nets, hyper = lanes_of(n_lanes)
        # Warm-up: the same call for 2 epochs compiles the kernel (or loads it from the cache).
        trainer(X, Y, *[a.copy() for a in nets], 2, **hyper)
        n_epochs = max(1, min(DIAGNOSTICS_EPOCHS if diagnostics else epochs, biggest.epochs))
        while True:
            w = [a.copy() for a in nets]
            t0 = time.perf_counter()
            trainer(X, Y, *w, n_epochs, **hyper)
            dt = max(time.perf_counter() - t0, 1e-9)
            if dt >= min_seconds or n_epochs >= 100 * epochs:
                break
            if n_epochs < biggest.epochs:
                n_epochs = min(biggest.epochs, 100 * epochs, max(n_epochs + 1, int(n_epochs * 1.5 * min_seconds / dt)))
            elif n_lanes < min(pool.size, biggest.n_runs if device == "cpu" else pool.size):
                # few epochs a run: time more runs at once, up to a chunk (a launch), or the call's own
                # cost would be counted as the runs'
                n_lanes = min(pool.size, biggest.n_runs if device == "cpu" else pool.size,
                              max(n_lanes + 1, int(n_lanes * 1.5 * min_seconds / dt)))
                nets, hyper = lanes_of(n_lanes)
            else:
                break
        measured.append(Calibration(dataset, hidden, dtype, n_lanes, n_epochs, dt, n_lanes * n_epochs / dt,
                                    batch_size, diagnostics))
    warmup = time.perf_counter() - warm_start - sum(c.seconds for c in measured)
    first = max(rows[order[0]], key=lambda c: c.n_runs)
    host = _host_seconds_per_run(grid, runs, first.rows).total

    shapes = {(c.dataset, c.hidden, c.dtype, c.batch_size, c.diagnostics): c for c in measured}
    ref = measured[0]
    ref_x, _ = dataset_arrays(grid, ref.dataset)
    ref_cost = _shape_cost(ref_x.shape[0], ref_x.shape[1], ref.hidden, ref.batch_size, ref.diagnostics)
    total = 0.0
    rates = {}
    for key, net_epochs in work.items():
        cal = shapes.get(key)
        if cal is not None:
            rate = cal.rate
        else:
            X, _ = dataset_arrays(grid, key[0])
            rate = ref.rate * ref_cost / _shape_cost(X.shape[0], X.shape[1], *key[1:2], *key[3:])
        rates[key] = rate
        total += net_epochs / rate
    busy = max(1, min(workers, sum(-(-c.n_runs // TILE_LANES.get(c.dtype, 64)) for c in chunks)))
    host_total = len(runs) * host / (1 if device == "cuda" else busy)  # on the GPU the host works alone
    return Estimate(total / busy + host_total, workers, busy, measured, max(0.0, warmup), rates,
                    device=_gpu_name() if device == "cuda" else "cpu", host_seconds=host_total)


class HostCost(NamedTuple):
    """Seconds a run costs outside the kernel: its initial weights and its row (`rows`), its share of a
    part's Parquet write (`write`, which `sweep run` does in another thread than the rows)."""
    rows: float
    write: float

    @property
    def total(self):
        return self.rows + self.write


def _host_seconds_per_run(grid, runs, rows):
    """The `HostCost` of the runs at `rows`, trained for one epoch through the path `sweep run` takes: the
    chunk's time less its kernel call's, timed inside the same call (the kernel's calibration counts that)."""
    import io

    from sweep.collect import dictionary_columns, weight_columns
    from sweep.execute import train_chunk
    from sweep.runner import params_schema
    from sweep.store import write_rows

    one = runs.iloc[rows].assign(epochs=1, checkpoints=0)
    data = grid.datasets[str(one["dataset"].iloc[0])]
    schema = params_schema(one)
    train_chunk(one.iloc[:2], data.X, data.Y, params_schema=schema, record=grid.record)  # compiled or loaded already
    clock = {}
    start = time.perf_counter()
    table = train_chunk(one, data.X, data.Y, params_schema=schema, with_weights=weight_columns(one),
                        record=grid.record, clock=clock)
    built = time.perf_counter() - start - clock["kernel"]
    start = time.perf_counter()
    write_rows(table, io.BytesIO(), dictionary_columns(table.schema))
    written = time.perf_counter() - start
    return HostCost(max(0.0, built) / len(rows), written / len(rows))


def gpu_present():
    """Whether this machine has a GPU that `--backend cuda` can use (the CUDA simulator is not one)."""
    try:
        from kernels.cuda import cuda_available, simulated
    except ImportError:
        return False
    return cuda_available()[0] and not simulated()


def _gpu_name():
    from numba import cuda

    name = getattr(cuda.get_current_device(), "name", None)  # the simulator's device has none
    if name is None:
        return "the CUDA simulator"
    return name.decode() if isinstance(name, bytes) else str(name)


# --------------------------------------------------------------------------- report

def format_duration(seconds):
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _value(v):
    if isinstance(v, tuple):
        return "[" + ", ".join(str(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:.10g}"  # enough digits for an [[exclude]] to match (see sweep.grid)
    return f"{v:_}" if isinstance(v, int) and abs(v) >= 100_000 else str(v)


def _axis_text(axis):
    if len(axis.names) == 1:
        vals = axis.column(axis.names[0])
        shown = ", ".join(_value(v) for v in vals[:4])
        if len(vals) > 6:
            shown = ", ".join(_value(v) for v in vals[:3]) + f", ..., {_value(vals[-1])}"
        elif len(vals) > 4:
            shown = ", ".join(_value(v) for v in vals)
        return f"{axis.names[0]} ({axis.size}): {shown}"
    return f"zip ({axis.size}): " + " & ".join(axis.names)


def _host_share(estimate):
    """', of which N outside the kernel' when that is a tenth of the estimate or more."""
    if estimate.host_seconds < 0.1 * estimate.seconds:
        return ""
    return f", {format_duration(estimate.host_seconds)} of it outside the kernel (weights, rows, parts)"


def _calibration_lines(estimate, unit):
    return [f"                measured {c.rate:.3g} network-epochs/s {unit} on {c.dataset}, hidden {c.hidden}, "
            f"{c.dtype}{f', batch_size {c.batch_size}' if c.batch_size else ''}"
            f"{', diagnostics' if c.diagnostics else ''} ({c.lanes:,} lanes x {c.epochs} "
            f"epochs in {c.seconds:.2f} s)" for c in estimate.calibrations]


def report(grid, runs, chunks, estimate=None, estimate_note=None, n_rows=5, gpu_estimate=None, gpu_note=None,
           planning=None):
    """The text `sweep plan` prints; with `gpu_estimate` (an `Estimate` of device "cuda") or `gpu_note`
    (why there is none), a line for --backend cuda too; `planning`: the seconds this plan took to expand
    and plan the runs, which `sweep run` spends too before it trains (said when 1 s or more)."""
    lines = [f"sweep plan: {grid.name}  ({grid.file})"]
    if grid.description:
        lines.append(f"  {grid.description}")
    lines.append("")
    if grid.axes:
        lines.append("axes (last varies fastest):")
        lines.extend(f"  {_axis_text(a)}" for a in grid.axes)
        lines.append("  = " + " x ".join(str(a.size) for a in grid.axes) + f" = {grid.main.size:,} runs")
    else:
        lines.append("axes: none (one run)")
    for b in grid.extras:
        lines.append(f"  + {b.path}: {b.size:,} run{'s' if b.size != 1 else ''}")
    removed = grid.n_points - len(runs)
    if grid.excludes:
        lines.append(f"  - {len(grid.excludes)} exclude{'s' if len(grid.excludes) != 1 else ''}: "
                     f"{removed:,} run{'s' if removed != 1 else ''}")
    varied = {n for a in grid.axes for n in a.names} | {n for b in grid.extras for a in b.axes for n in a.names}
    varied |= {n for b in grid.extras for n, v in b.fixed.items() if grid.fixed.get(n, v) != v}
    written = [f"{k}={_value(v)}" for k, v in grid.explicit.items() if k not in varied]
    layers = {"lr_hidden", "lr_output"} & (varied | set(grid.explicit))
    # the layers' rates follow lr unless given; lr says nothing once both are given
    unsaid = {k for k, v in grid.fixed.items() if v is None} | ({"lr"} if len(layers) == 2 else set())
    defaults = [f"{k}={_value(v)}" for k, v in grid.fixed.items()
                if k not in varied and k not in grid.explicit and k not in unsaid]
    for label, items in (("fixed", written), ("defaults", defaults)):
        if items:
            lines.extend(textwrap.wrap(", ".join(items), width=100, initial_indent=f"{label}: ",
                                       subsequent_indent=" " * (len(label) + 2), break_on_hyphens=False))
    lines.append("")

    net_epochs = sum(c.network_epochs for c in chunks)
    shapes = {c.shape for c in chunks}
    sizes = [c.n_runs for c in chunks]
    lines.append(f"runs:           {len(runs):,}")
    lines.append(f"chunks:         {len(chunks):,} in {len(shapes)} shape{'s' if len(shapes) != 1 else ''} "
                 + (f"(at most {grid.chunk_size:,} runs each; " if grid.chunk_size else "(")
                 + f"sizes {min(sizes):,}" + (f" to {max(sizes):,})" if max(sizes) != min(sizes) else ")"))
    lines.append(f"network-epochs: {net_epochs:,}" + (" (at most: early_stop is on)"
                                                     if bool(runs["early_stop"].any()) else ""))
    if estimate is not None:
        lines.append(f"estimate:       about {format_duration(estimate.seconds)} with {estimate.busy_workers} "
                     f"worker{'s' if estimate.busy_workers != 1 else ''}"
                     + (f" (of {estimate.workers})" if estimate.busy_workers != estimate.workers else "")
                     + _host_share(estimate))
        lines.extend(_calibration_lines(estimate, "per worker"))
    elif estimate_note:
        lines.append(f"estimate:       {estimate_note}")
    if gpu_estimate is not None:
        lines.append(f"on the GPU:     about {format_duration(gpu_estimate.seconds)} with --backend cuda "
                     f"({gpu_estimate.device})" + _host_share(gpu_estimate))
        lines.extend(_calibration_lines(gpu_estimate, "in one launch"))
    elif gpu_note:
        lines.append(f"on the GPU:     {gpu_note}")
    if planning is not None and planning >= 1 and (estimate is not None or gpu_estimate is not None):
        lines.append(f"                plus about {format_duration(planning)} to plan the runs before training, "
                     f"as this plan took")
    if n_rows > 0:
        order = [n for a in grid.axes for n in a.names]
        order += [n for n in runs.columns if n in varied and n not in order]
        shown_cols = ["run_id"] + order
        head = runs[shown_cols].head(n_rows)
        lines.append("")
        lines.append(f"first {len(head)} of {len(runs):,} runs:")
        table = head.to_string(index=False, float_format=lambda x: f"{x:.10g}")
        lines.extend("  " + line for line in table.splitlines())
    return "\n".join(lines) + "\n"


def chunk_cost(datasets):
    """cost(chunk): its network-epochs x the relative cost of one network-epoch of its shape
    (`datasets`: name -> Dataset), to balance shards."""
    def cost(chunk):
        X = datasets[chunk.dataset].X
        return chunk.network_epochs * _shape_cost(X.shape[0], X.shape[1], chunk.hidden,
                                                  diagnostics=_cost_key(chunk)[4])
    return cost


def shard_report(chunks, count, cost, estimate=None, cpus_per_task=1):
    """Lines describing the N shards of `sweep run --shard I/N` / `sweep slurm --tasks N`:
    chunks, runs and network-epochs of each, and with an estimate their wall time on
    `cpus_per_task` workers and a SLURM --time to ask for."""
    from sweep.shard import assign

    owner = assign(chunks, count, cost)
    header = f"shards (--tasks {count}" + (f", {cpus_per_task} CPU{'s' * (cpus_per_task != 1)} each):" if estimate else "):")
    rows = [("shard", "chunks", "runs", "network-epochs") + (("estimate",) if estimate else ())]
    slowest = 0.0
    for index in range(1, count + 1):
        mine = [c for c in chunks if owner[c.chunk_id] == index]
        row = (f"{index}/{count}", f"{len(mine):,}", f"{sum(c.n_runs for c in mine):,}",
               f"{sum(c.network_epochs for c in mine):,}")
        if estimate:
            tiles = sum(-(-c.n_runs // TILE_LANES.get(c.dtype, 64)) for c in mine)
            seconds = sum(estimate.chunk_seconds(c) for c in mine) / max(1, min(cpus_per_task, tiles))
            slowest = max(slowest, seconds)
            row += (f"about {format_duration(seconds)}" if mine else "-",)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [header] + ["  " + "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
                        for r in rows]
    empty = sum(1 for index in range(1, count + 1) if index not in owner.values())
    if empty:
        lines.append(f"  {empty} shard{'s have' if empty > 1 else ' has'} no chunk: use fewer tasks or a smaller "
                     f"chunk_size")
    if estimate:
        # start-up and writing are not in the estimate: ask for 1.5x plus two minutes
        lines.append(f"  slowest shard about {format_duration(slowest)}: for SLURM, --time "
                     f"{int(-(-(1.5 * slowest + 120) // 60))} (minutes) leaves room")
    return lines

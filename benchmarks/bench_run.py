"""End-to-end `sweep run` throughput against the kernels' own, in one run.

Workload (the kernels benchmark's): 2-4-1 XOR networks, randn init scale 1,
MSE, lr 0.5, --epochs (default 2000); the sweep is a grid of --runs seeds
(default 20,000). Prints, as a table and as a last-line JSON object:

* kernel: `kernels.train` on 4096 such networks, all cores (median of --repeats);
* run_train: the train phase of `python -m sweep run` as it reports it
  (planning, training, writing the parts; warm Numba cache);
* run_wall: the whole command, interpreter start and imports included;
* startup: wall time of `python -m sweep run` on a 4-run grid (warm: Numba's cache and Python's bytecode
  cache filled by a run before), against the bar of issue 15
  (0.8 s) and the floors of `benchmarks/startup.py` (a process that calls one cached Numba function, and one
  that also imports pandas and pyarrow, as `sweep run` must);
* host: runs per second of the work outside the kernel on one thread (what a GPU sweep's host must keep
  up with), split as a GPU sweep splits it: initial weights drawn and rows built (the backend's two
  worker threads), parts written (the runner's writer threads); on a GPU launch of the grid above
  (262,144 runs) and on a 512 x 512 map of the fractal network (16-16-1, record = ["trainability"]; 16
  samples, the host's work per run is that of 272), each against the bar of the maps issue, >= 1e6 runs/s;
* peak_rss_mb: peak memory of `python -m sweep run` on a --memory-runs grid
  (default 200,000 runs, 100 epochs: memory does not grow with epochs);
* with --record COL,COL: the grid stores only those statistics (the `record`
  setting, as a trainability map does), and the run's peak memory and
  `sweep.load`'s time and peak memory on its results are reported too
  (load_s, load_rss_mb), with the bar of the maps issue: the whole command
  at least half the kernel's rate (at most twice its time);
* with --plan-side S: `sweep plan --no-estimate` of an S x S map (a tanh
  16-16-1 grid of two log-spaced learning-rate axes: S^2 runs), its wall
  time and peak memory (plan_s, plan_rss_mb);
* with --jax: issue 15's end-to-end comparison, `python -m sweep run` of a
  grid of --jax-runs seeds (default 32,768) x --jax-epochs (default 3,000),
  the workload above, whole command timed (warm cache), against the JAX
  peer (benchmarks.peers.train_jax, float64) training as many networks for
  as many epochs in this process; they take turns, --repeats times. JAX is
  compiled ahead of time for that workload first (its seconds are
  reported) and called once untimed, so its timed calls are warm; its initial weights are randn x 1
  from np.random.default_rng(0), not the grid's seeds (the work per epoch
  does not depend on them: no early stop, no statistics on the JAX side).
  Prints both in network-epochs/s and the bar: sweep run, whole command,
  >= 2.5x JAX float64 (jax_f64, run_jax_wall, run_jax_vs_jax_f64 in the JSON).

Medians of --repeats; the peak memory of a command is the largest of its
runs (ru_maxrss of the child, read after each one).

    python benchmarks/bench_run.py --runs 1000000 --epochs 50 --record trainability --plan-side 4096
    python benchmarks/bench_run.py --jax --runs 20000 --epochs 200
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BAR_JAX = 2.5          # issue 15: sweep run, whole command, against JAX float64
HOST_BAR = 1e6         # issue 16: runs per second a GPU sweep's host keeps up with
HOST_RUNS = 1 << 18    # the XOR grid whose host work is timed: a GPU launch (sweep.backends.cuda.BATCH_LANES)
HOST_MAP_SIDE = 512    # the map whose host work is timed: 262,144 runs of the 16-16-1 fractal network (on 16
#                        samples, not 272: the host's work per run does not depend on them, the 1-epoch kernel
#                        call that the timing leaves out does)

GRID = """name = "{name}"
{record}dataset = "xor"
hidden = 4
epochs = {epochs}
init = "normal"
init_scale = 1.0
loss = "mse"
lr = 0.5
[grid]
seed = {{ range = [0, {runs}] }}
"""

MAP = """name = "map"
dataset = "fractal"
hidden = 16
activation = "tanh"
output = "identity"
bias = false
scaling = "mean-field"
reduction = "mean"
epochs = 1000
checkpoints = 0
record = ["trainability"]
[datasets.fractal]
generator = "gaussian"
samples = 272
inputs = 16
[grid]
lr_hidden = {{ logspace = [-3, 6, {side}] }}
lr_output = {{ logspace = [-3, 6, {side}] }}
"""


def child(argv, env=None):
    """(wall seconds, stderr, peak RSS in MB) of one Python child process (its own peak, from wait4);
    SystemExit with its stderr if it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{text}")
    return wall, text, usage.ru_maxrss / 1024


def timed(argv):
    """(wall seconds, peak RSS in MB) of a Python child process."""
    wall, _, rss = child(argv)
    return wall, rss


def kernel_rate(epochs, repeats, networks=4096):
    from kernels import train

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([0, 1, 1, 0], float)
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((2, 4, networks)), rng.standard_normal((4, networks))
    threads = os.cpu_count()

    def once(e):
        args = (W1.copy(), np.zeros((4, networks)), W2.copy(), np.zeros(networks))
        start = time.perf_counter()
        train(X, Y, *args, e, lr=0.5, loss="mse", threads=threads)
        return networks * e / (time.perf_counter() - start)

    once(2)
    return statistics.median(once(epochs) for _ in range(repeats))


def sweep_run(grid_text, workdir, name, env=None):
    grid = Path(workdir) / f"{name}.toml"
    grid.write_text(grid_text)
    out = Path(workdir) / "results"
    wall, stderr, rss = child(["-m", "sweep", "run", str(grid), "--out", str(out)], env)
    m = re.search(r"([0-9.e+]+) network-epochs/s", stderr.strip().splitlines()[-2])
    return wall, float(m.group(1)) if m else float("nan"), rss


def host_rate(grid_path, repeats, lanes=1 << 18):
    """Runs per second of the work outside the kernel on one thread, timed as `sweep plan` times it
    (`sweep.plan._host_seconds_per_run`), on a launch of the GPU backend (at most
    `sweep.backends.cuda.BATCH_LANES` runs): what a GPU sweep's host must keep up with. A dict: `rows` (initial
    weights drawn and rows built, in the backend's two worker threads) and `write` (the parts' Parquet writes,
    in the runner's writer threads), medians of `repeats` after one untimed launch: a sweep's first launch
    also pays for the memory the process gets from the system the first time (a second or so on a map)."""
    from sweep.plan import _host_seconds_per_run
    from sweep.runner import prepare

    prepared = prepare(grid_path, tempfile.gettempdir())
    rows = np.concatenate([c.rows for c in prepared.chunks])[:lanes]
    _host_seconds_per_run(prepared.grid, prepared.runs, rows)  # a process's first launch pays page faults
    costs = [_host_seconds_per_run(prepared.grid, prepared.runs, rows) for _ in range(repeats)]
    return {"rows": statistics.median(1 / c.rows for c in costs),
            "write": statistics.median(1 / c.write for c in costs), "lanes": len(rows)}


def startup_floors():
    """What no change to `sweep` can take off its start-up (`benchmarks.startup.measure_floors`)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.startup import measure_floors
    return measure_floors()


def jax_workload(networks):
    """The XOR data and `networks` initial networks (kernel layout, float64): randn x 1, zero biases."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([0, 1, 1, 0], float)
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((2, 4, networks)), rng.standard_normal((4, networks))
    return X, Y, W1, np.zeros((4, networks)), W2, np.zeros(networks)


def jax_compile(networks, epochs):
    """Seconds to compile the JAX peer (float64) for that workload, ahead of time."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.peers import compile_jax
    start = time.perf_counter()
    compile_jax(4, 2, 4, networks, epochs, np.float64)
    return time.perf_counter() - start


def jax_rate(networks, epochs):
    """Network-epochs per second of one warm call of the JAX peer, float64 (compile with jax_compile first)."""
    from benchmarks.peers import train_jax
    data = jax_workload(networks)
    start = time.perf_counter()
    train_jax(*data, epochs, 0.5, np.float64)           # returns when the result is ready
    return networks * epochs / (time.perf_counter() - start)


def jax_comparison(args, tmp):
    """Issue 15's end to end: sweep run (whole command) and JAX float64 on the same workload, taking turns."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.peers import jax_version
    version = jax_version()
    if version is None:
        return {"jax": None}
    n, e = args.jax_runs, args.jax_epochs
    compile_s = jax_compile(n, e)
    jax_rate(n, e)                         # one untimed call of the compiled program
    runs, jaxes = [], []
    for i in range(args.repeats):
        wall, _, _ = sweep_run(GRID.format(name=f"jax{i}", epochs=e, runs=n, record=""), tmp, f"jax{i}")
        runs.append(n * e / wall)
        jaxes.append(jax_rate(n, e))
    run, jax = statistics.median(runs), statistics.median(jaxes)
    return {"jax": version[0], "jaxlib": version[1], "jax_runs": n, "jax_epochs": e, "run_jax_wall": run,
            "jax_f64": jax, "run_jax_vs_jax_f64": run / jax, "pass_2_5x_jax_f64": bool(run / jax >= BAR_JAX),
            "jax_compile_s": compile_s, "run_jax_walls": runs, "jax_f64_runs": jaxes,
            "xla_flags": os.environ.get("XLA_FLAGS")}


def print_jax(j, repeats):
    """The --jax comparison's lines."""
    if j["jax"] is None:
        print("--jax: skipped, jax is not installed (pip install -e .[bench])")
        return
    ratio = j["run_jax_vs_jax_f64"]
    print(f"issue 15, end to end: {j['jax_runs']:,} networks x {j['jax_epochs']:,} epochs, 2-4-1 XOR, MSE, lr 0.5; "
          f"medians of {repeats}, taking turns")
    print(f"{'':28s} {'network-epochs/s':>17s} {'vs JAX f64':>11s}   runs")
    print(f"{'sweep run, whole command':28s} {j['run_jax_wall']:17.4g} {ratio:10.2f}x   "
          + " ".join(f"{r:.3g}" for r in j["run_jax_walls"]))
    print(f"{'JAX float64 (warm)':28s} {j['jax_f64']:17.4g} {1.0:10.2f}x   "
          + " ".join(f"{r:.3g}" for r in j["jax_f64_runs"]))
    print(f"JAX: jax {j['jax']}, jaxlib {j['jaxlib']}, XLA CPU backend, XLA_FLAGS="
          f"{j['xla_flags'] or '(unset)'!r}; compiled ahead of time in {j['jax_compile_s']:.1f} s and called once, "
          f"untimed; XLA's CPU thread pool: the process's {len(os.sched_getaffinity(0))} CPUs")
    print(f"bar: sweep run, whole command >= {BAR_JAX:g}x JAX float64: {'PASS' if ratio >= BAR_JAX else 'FAIL'} "
          f"({ratio:.2f}x)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-runs", type=int, default=200_000)
    p.add_argument("--record", default=None, metavar="COL[,COL]", help="store only these statistics")
    p.add_argument("--plan-side", type=int, default=None, metavar="S", help="also time sweep plan of an S x S map")
    p.add_argument("--jax", action="store_true", help="also compare sweep run with JAX float64 (issue 15)")
    p.add_argument("--jax-runs", type=int, default=32_768, help="networks of the --jax comparison")
    p.add_argument("--jax-epochs", type=int, default=3_000, help="epochs of the --jax comparison")
    args = p.parse_args()
    record = "" if args.record is None else "record = [" + ", ".join(
        f'"{c.strip()}"' for c in args.record.split(",")) + "]\n"

    with tempfile.TemporaryDirectory() as tmp:
        # fills Numba's cache, and Python's bytecode cache even where PYTHONDONTWRITEBYTECODE is set (as in
        # some sandboxes): a warm start of a user's installation reads both
        writes_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        sweep_run(GRID.format(name="warm", epochs=10, runs=4, record=""), tmp, "warm", writes_bytecode)
        startup = statistics.median(sweep_run(GRID.format(name=f"tiny{i}", epochs=10, runs=4, record=""), tmp, f"tiny{i}")[0]
                                    for i in range(5))
        floors = startup_floors()
        kernel = kernel_rate(args.epochs, args.repeats)
        walls, trains, peaks, loads, load_peaks = [], [], [], [], []
        for i in range(args.repeats):
            wall, train_rate, peak_run = sweep_run(GRID.format(name=f"e2e{i}", epochs=args.epochs, runs=args.runs,
                                                               record=record), tmp, f"e2e{i}")
            walls.append(args.runs * args.epochs / wall)
            trains.append(train_rate)
            peaks.append(peak_run)
            if args.record is not None:
                seconds, rss = timed(["-c", f"import sweep, time; t = time.perf_counter(); "
                                            f"sweep.load({str(Path(tmp) / 'results' / f'e2e{i}')!r}); "
                                            f"print(time.perf_counter() - t)"])
                loads.append(seconds)
                load_peaks.append(rss)
        run_wall, run_train = statistics.median(walls), statistics.median(trains)
        # Before the host timings: Linux carries a process's peak RSS through fork and exec into the child's
        # ru_maxrss, and the host timings grow this process by a gigabyte.
        _, _, peak = sweep_run(GRID.format(name="memory", epochs=100, runs=args.memory_runs, record=""), tmp,
                               "memory")
        host_grid, host_map_grid = Path(tmp) / "host.toml", Path(tmp) / "host_map.toml"
        host_grid.write_text(GRID.format(name="host", epochs=args.epochs, runs=HOST_RUNS, record=record))
        host_map_grid.write_text(MAP.format(side=HOST_MAP_SIDE).replace("samples = 272", "samples = 16"))
        host, host_map = host_rate(host_grid, args.repeats), host_rate(host_map_grid, args.repeats)
        kernel_after = kernel_rate(args.epochs, args.repeats)
        kernel = statistics.median([kernel, kernel_after])
        plans = []
        if args.plan_side:
            grid = Path(tmp) / "map.toml"
            grid.write_text(MAP.format(side=args.plan_side))
            plans = [timed(["-m", "sweep", "plan", str(grid), "--no-estimate", "--rows", "0"])
                     for _ in range(args.repeats)]
        jax_out = jax_comparison(args, tmp) if args.jax else None

    rows = [("kernel (train, all cores)", kernel, 1.0),
            ("sweep run, train phase", run_train, run_train / kernel),
            ("sweep run, whole command", run_wall, run_wall / kernel)]
    print(f"{args.runs:,} runs x {args.epochs} epochs, 2-4-1 XOR, {os.cpu_count()} cores; medians of {args.repeats}")
    print(f"{'':28s} {'network-epochs/s':>17s} {'vs kernel':>10s}")
    for label, rate, ratio in rows:
        print(f"{label:28s} {rate:17.4g} {ratio:9.1%}")
    print(f"start-up of `sweep run` on a 4-run grid (warm cache): {startup:.2f} s (bar 0.8 s: "
          f"{'PASS' if startup <= 0.8 else 'FAIL'}); floors: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in floors.items()))
    print("work outside the kernel, one thread (a GPU sweep needs >= 1e6 runs/s of its host: weights and rows in "
          "two threads, parts written in others)")
    for label, h in (("2-4-1 XOR, every column", host), ("16-16-1 map, record = trainability", host_map)):
        total = 1 / (1 / h["rows"] + 1 / h["write"])
        verdict = {k: "PASS" if h[k] >= HOST_BAR else "FAIL" for k in ("rows", "write")}
        print(f"  {label:28s} weights and rows {h['rows']:9.3g} runs/s ({verdict['rows']}), "
              f"part writes {h['write']:9.3g} runs/s ({verdict['write']}), "
              f"both {1e6 / total:.2f} us a run ({h['lanes']:,} runs)")
    print(f"peak memory of `sweep run` on {args.memory_runs:,} runs: {peak:.0f} MB")
    bar = run_train / kernel >= 0.85
    if args.epochs >= 2000:  # the bar's workload: runs long enough that a run's fixed costs are a small share
        print(f"bar: train phase >= 85% of the kernel: {'PASS' if bar else 'FAIL'} ({run_train / kernel:.1%})")
    else:
        print(f"train phase {run_train / kernel:.1%} of the kernel (its 85% bar is for runs of >= 2,000 epochs: "
              f"at {args.epochs}, a run's fixed costs weigh more)")
    out = {"kernel": kernel, "run_train": run_train, "run_wall": run_wall, "train_vs_kernel": run_train / kernel,
           "wall_vs_kernel": run_wall / kernel, "startup_s": startup, "startup_floors_s": floors,
           "host_runs_per_s": 1 / (1 / host["rows"] + 1 / host["write"]), "host_rows_runs_per_s": host["rows"],
           "host_write_runs_per_s": host["write"], "host_map_rows_runs_per_s": host_map["rows"],
           "host_map_write_runs_per_s": host_map["write"], "peak_rss_mb": peak, "runs": args.runs,
           "epochs": args.epochs}
    if args.record is not None:
        out.update(run_rss_mb=max(peaks), load_s=statistics.median(loads), load_rss_mb=max(load_peaks))
        print(f"record = {args.record}: peak memory of `sweep run` {max(peaks):.0f} MB; sweep.load of its "
              f"{args.runs:,} rows {out['load_s']:.2f} s, peak {max(load_peaks):.0f} MB")
        half = run_wall / kernel >= 0.5
        print(f"bar: whole command >= 50% of the kernel (at most twice its time): {'PASS' if half else 'FAIL'} "
              f"({run_wall / kernel:.1%})")
    if plans:
        out.update(plan_s=statistics.median(p[0] for p in plans), plan_rss_mb=max(p[1] for p in plans),
                   plan_side=args.plan_side)
        print(f"sweep plan of a {args.plan_side} x {args.plan_side} map ({args.plan_side ** 2:,} runs): "
              f"{out['plan_s']:.1f} s, peak {out['plan_rss_mb']:.0f} MB")
    if jax_out is not None:
        print_jax(jax_out, args.repeats)
        out.update(jax_out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

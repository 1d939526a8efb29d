"""End-to-end `sweep run` throughput against the kernels' own, in one run.

Workload (the kernels benchmark's): 2-4-1 XOR networks, randn init scale 1,
MSE, lr 0.5, --epochs (default 2000); the sweep is a grid of --runs seeds
(default 20,000). Prints, as a table and as a last-line JSON object:

* kernel: `kernels.train` on 4096 such networks, all cores (median of --repeats);
* run_train: the train phase of `python -m sweep run` as it reports it
  (planning, training, writing the parts; warm Numba cache);
* run_wall: the whole command, interpreter start and imports included;
* startup: wall time of `python -m sweep run` on a 4-run grid (warm cache);
* peak_rss_mb: peak memory of `python -m sweep run` on a --memory-runs grid
  (default 200,000 runs, 100 epochs: memory does not grow with epochs).
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRID = """name = "{name}"
dataset = "xor"
hidden = 4
epochs = {epochs}
init = "normal"
init_scale = 1.0
loss = "mse"
lr = 0.5
[grid]
seed = {{ range = [0, {runs}] }}
"""


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


def sweep_run(grid_text, workdir, name):
    grid = Path(workdir) / f"{name}.toml"
    grid.write_text(grid_text)
    out = Path(workdir) / "results"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep run failed:\n{proc.stderr}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    m = re.search(r"([0-9.e+]+) network-epochs/s", proc.stderr.strip().splitlines()[-2])
    return wall, float(m.group(1)) if m else float("nan"), max(rss, before) / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-runs", type=int, default=200_000)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sweep_run(GRID.format(name="warm", epochs=10, runs=4), tmp, "warm")  # fills Numba's cache
        startup = statistics.median(sweep_run(GRID.format(name=f"tiny{i}", epochs=10, runs=4), tmp, f"tiny{i}")[0]
                                    for i in range(5))
        kernel = kernel_rate(args.epochs, args.repeats)
        walls, trains = [], []
        for i in range(args.repeats):
            wall, train_rate, _ = sweep_run(GRID.format(name=f"e2e{i}", epochs=args.epochs, runs=args.runs), tmp,
                                            f"e2e{i}")
            walls.append(args.runs * args.epochs / wall)
            trains.append(train_rate)
        run_wall, run_train = statistics.median(walls), statistics.median(trains)
        kernel_after = kernel_rate(args.epochs, args.repeats)
        kernel = statistics.median([kernel, kernel_after])
        _, _, peak = sweep_run(GRID.format(name="memory", epochs=100, runs=args.memory_runs), tmp, "memory")

    rows = [("kernel (train, all cores)", kernel, 1.0),
            ("sweep run, train phase", run_train, run_train / kernel),
            ("sweep run, whole command", run_wall, run_wall / kernel)]
    print(f"{args.runs:,} runs x {args.epochs} epochs, 2-4-1 XOR, {os.cpu_count()} cores; medians of {args.repeats}")
    print(f"{'':28s} {'network-epochs/s':>17s} {'vs kernel':>10s}")
    for label, rate, ratio in rows:
        print(f"{label:28s} {rate:17.4g} {ratio:9.1%}")
    print(f"start-up of `sweep run` on a 4-run grid (warm cache): {startup:.2f} s")
    print(f"peak memory of `sweep run` on {args.memory_runs:,} runs: {peak:.0f} MB")
    bar = run_train / kernel >= 0.85
    print(f"bar: train phase >= 85% of the kernel: {'PASS' if bar else 'FAIL'} ({run_train / kernel:.1%})")
    print(json.dumps({"kernel": kernel, "run_train": run_train, "run_wall": run_wall,
                      "train_vs_kernel": run_train / kernel, "wall_vs_kernel": run_wall / kernel,
                      "startup_s": startup, "peak_rss_mb": peak, "runs": args.runs, "epochs": args.epochs}))


if __name__ == "__main__":
    main()

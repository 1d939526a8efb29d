"""The cost of the curvature diagnostics (issue 18): network-epochs/s with and without `diagnostics`.

    python benchmarks/bench_diagnostics.py [--repeats 3] [--threads N] [--scale 1.0] [--json FILE]

Workloads (float64, full-batch gradient descent, checkpoints 0; the networks of
benchmarks/bench_kernels.py's `make_workload` where it has them):

  xor       2-4-1 sigmoid/sigmoid on XOR, MSE, sum, lr 0.5, randn init (17 parameters: a dense Hessian);
  teacher   4-8-1 tanh/identity on examples/edge_of_stability.toml's data (64 samples), mean, lr 1.0,
            init N(0, 0.3^2) (49 parameters: dense);
  fractal   16-16-1 tanh/identity without biases, mean-field, 272 Gaussian samples, mean, lr 0.05
            (272 parameters: Lanczos);
  wide      4-256-1 tanh/identity, NTK parameterisation, examples/catapult.toml's data (16 samples), mean,
            lr 1.0 (1,537 parameters: Lanczos).

Each workload is timed without diagnostics on its full size and with them on
fewer networks and epochs (`WITH`: the same rate measure, network-epochs per
second, a few seconds a call); both are warmed up once (compilation), then
timed `--repeats` times, taking turns; medians are reported with the ratio
without/with and the microseconds one state's diagnostics cost one network on
one thread (from the rate with diagnostics and the thread count, every
thread busy: the calls with diagnostics have 2 tiles of lanes or more). `--scale`
scales the networks of every call (a smoke test: 0.05). Output: the CPU model,
the table, and one JSON object as the last line (also to `--json FILE`).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_optimizers import cpu_model  # noqa: E402
from kernels import train  # noqa: E402
from kernels.init import initial_lanes  # noqa: E402
from sweep.datasets import generate  # noqa: E402

# name: (networks, epochs) without diagnostics, (networks, epochs) with them
# (with diagnostics: at least 2 tiles of 64 lanes, so that 2 threads both work)
SIZES = {"xor": ((4096, 2000), (256, 200)), "teacher": ((1024, 1000), (128, 100)),
         "fractal": ((256, 200), (128, 10)), "wide": ((256, 200), (128, 10))}


def workload(name, networks):
    """(X, Y, model keywords, lr, initial lanes) of a workload with `networks` networks."""
    seeds = np.arange(networks)

    def draw(n_inputs, hidden, scale, scheme="normal"):
        return initial_lanes(np.array([scheme] * networks, object), seeds, np.full(networks, scale),
                             np.zeros(networks), n_inputs, hidden, np.float64)

    if name == "xor":
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
        return X, np.array([0, 1, 1, 0], float), dict(), 0.5, draw(2, 4, 1.0)
    tanh_regression = dict(activation="tanh", output="identity", reduction="mean")
    if name == "teacher":
        X, Y = generate({"generator": "teacher", "samples": 64, "inputs": 4, "hidden": 8, "activation": "tanh",
                         "seed": 0, "noise": 0.0})
        return X, Y, tanh_regression, 1.0, draw(4, 8, 0.3)
    if name == "fractal":
        X, Y = generate({"generator": "gaussian", "samples": 272, "inputs": 16, "seed": 0, "input_std": 1.0})
        return X, Y, dict(tanh_regression, scaling="mean-field", bias=False), 0.05, draw(16, 16, 1.0)
    X, Y = generate({"generator": "teacher", "samples": 16, "inputs": 4, "hidden": 8, "activation": "tanh",
                     "seed": 0, "noise": 0.0})
    return X, Y, dict(tanh_regression, scaling="ntk"), 1.0, draw(4, 256, 1.0)


def rate(name, networks, epochs, diagnostics, threads):
    X, Y, model, lr, nets = workload(name, networks)
    nets = [a.copy() for a in nets]
    start = time.perf_counter()
    train(X, Y, *nets, epochs, lr=lr, checkpoints=0, threads=threads, diagnostics=diagnostics, **model)
    return networks * epochs / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workloads", default=",".join(SIZES))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    names = args.workloads.split(",")
    sizes = {n: [(max(1, int(round(k * args.scale))), e) for k, e in SIZES[n]] for n in names}
    for n in names:  # compile or load every kernel first
        for diagnostics in (False, True):
            rate(n, 2, 2, diagnostics, 1)
    runs = {(n, d): [] for n in names for d in (False, True)}
    for _ in range(args.repeats):
        for n in names:
            for d, (networks, epochs) in zip((False, True), sizes[n]):
                runs[n, d].append(rate(n, networks, epochs, d, args.threads))
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.threads} threads; medians of {args.repeats}")
    print(f"{'workload':10} {'without (net-epochs/s)':>24} {'with':>12} {'without / with':>16} "
          f"{'us per state (1 thread)':>24}")
    out = {"cpu": cpu_model(), "threads": args.threads, "repeats": args.repeats, "workloads": {}}
    for n in names:
        without, with_ = statistics.median(runs[n, False]), statistics.median(runs[n, True])
        per_state = 1e6 * args.threads / with_
        print(f"{n:10} {without:24.3g} {with_:12.3g} {without / with_:16.0f} {per_state:24.1f}")
        out["workloads"][n] = {"without": without, "with": with_, "ratio": without / with_,
                               "us_per_state": per_state, "sizes": sizes[n]}
    line = json.dumps(out)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

"""Throughput of the kernels against the NumPy peers, measured in one run.

    python benchmarks/bench_kernels.py [--epochs 2000] [--networks 4096]
        [--repeats 3] [--loop-networks 16] [--threads N] [--no-startup]

The workload: 2-4-1 sigmoid networks on XOR (4 samples), initial weights
standard normal x 1 (`np.random.default_rng(0)`, drawn once in the kernels'
layout W1 (D, H, L), W2 (H, L)), zero biases, MSE, lr 0.5, full-batch
gradient descent, `--epochs` epochs. Every method trains copies of the same
networks:

  loop        notebook 002's one-network NumPy loop (benchmarks.peers.train_loop),
              on the first `--loop-networks` networks, one after the other;
  batched     all networks at once in 3-D NumPy arrays (benchmarks.peers.train_batched),
              one thread: the peer of the bar;
  batched_threads  the same cut into `--threads` slices of lanes trained in
              threads (NumPy releases the GIL inside ufuncs): shown beside it;
  kernel_f64  kernels.train, float64, `--threads` threads (default: all cores);
  kernel_f32  the same in float32.

Each method is warmed up once on a small case (compilation), then timed
`--repeats` times, the methods taking turns; the median is reported, in
network-epochs per second. The final losses of the methods are compared on
the networks they share, to show they trained the same thing. Then (unless
--no-startup) the start-up time of a fresh process calling the kernels is
measured with the Numba cache cleared and again with it filled
(benchmarks/startup.py; this deletes kernels/__pycache__/*.nbi|*.nbc first).

Output: a table, the bar checks (float64 kernels >= 500x loop and >= 15x
batched), and as the last line one JSON object with keys loop, batched,
kernel_f64, kernel_f32 (network-epochs per second) followed by ratios, the
checks, the parameters and the start-up times.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.peers import train_batched, train_loop  # noqa: E402
from benchmarks.startup import format_startup, measure_startup  # noqa: E402

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)
D, H = 2, 4
LR = 0.5
BAR_LOOP = 500.0
BAR_BATCHED = 15.0


def initial_networks(n, seed=0, scale=1.0):
    """W1 (D, H, n), b1 (H, n), W2 (H, n), b2 (n,): randn * scale, zero biases."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((D, H, n)) * scale
    W2 = rng.standard_normal((H, n)) * scale
    return W1, np.zeros((H, n)), W2, np.zeros(n)


def final_mse(W1, b1, W2, b2):
    """mean((y - a)^2) of each lane's network on XOR, computed in float64."""
    W1, b1, W2, b2 = (np.asarray(p, dtype=np.float64) for p in (W1, b1, W2, b2))
    a1 = 1 / (1 + np.exp(-(np.einsum("nd,dhl->nhl", X, W1) + b1)))
    a2 = 1 / (1 + np.exp(-(np.einsum("nhl,hl->nl", a1, W2) + b2)))
    return np.mean((Y[:, None] - a2) ** 2, axis=0)


# Each runner takes the initial networks (kernel layout, float64), trains
# copies of them (copying outside the timed region) and returns
# (seconds, network-epochs, final parameters in kernel layout).

def run_loop(nets, epochs, n_loop):
    W1, b1, W2, b2 = nets
    copies = [(W1[:, :, i].copy(), b1[:, i].reshape(1, H).copy(),
               W2[:, i].reshape(H, 1).copy(), b2[i:i + 1].reshape(1, 1).copy())
              for i in range(n_loop)]
    t0 = time.perf_counter()
    for w1, c1, w2, c2 in copies:
        train_loop(X, Y, w1, c1, w2, c2, LR, epochs)
    seconds = time.perf_counter() - t0
    final = (np.stack([c[0] for c in copies], axis=-1), np.stack([c[1][0] for c in copies], axis=-1),
             np.stack([c[2][:, 0] for c in copies], axis=-1), np.array([c[3][0, 0] for c in copies]))
    return seconds, n_loop * epochs, final


def run_batched(nets, epochs, threads=1):
    params = [p.copy() for p in nets]
    t0 = time.perf_counter()
    train_batched(X, Y, *params, LR, epochs, threads=threads)
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def run_kernel(nets, epochs, dtype, threads):
    from kernels import train
    params = [np.array(p, dtype=dtype, order="C", copy=True) for p in nets]  # trained in place
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    t0 = time.perf_counter()
    train(Xd, Yd, *params, epochs, lr=LR, loss="mse", checkpoints=0, threads=threads)
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def subset(nets, n):
    return tuple(p[..., :n].copy() for p in nets)


def measure(args):
    nets = initial_networks(args.networks)
    for p in nets:
        p.flags.writeable = False      # every method trains copies
    loop_nets = subset(nets, args.loop_networks)
    methods = {
        "loop": lambda ep, small=False: run_loop(subset(loop_nets, 2) if small else loop_nets, ep,
                                                 2 if small else args.loop_networks),
        "batched": lambda ep, small=False: run_batched(subset(nets, 64) if small else nets, ep),
        "batched_threads": lambda ep, small=False: run_batched(subset(nets, 64) if small else nets, ep,
                                                               args.threads),
        "kernel_f64": lambda ep, small=False: run_kernel(subset(nets, 64) if small else nets, ep,
                                                         np.float64, args.threads),
        "kernel_f32": lambda ep, small=False: run_kernel(subset(nets, 64) if small else nets, ep,
                                                         np.float32, args.threads),
    }
    for run in methods.values():          # warm-up: compilation, caches, allocator
        run(10, small=True)
    rates = {name: [] for name in methods}
    finals = {}
    for _ in range(args.repeats):          # the methods take turns, so drift hits all alike
        for name, run in methods.items():
            seconds, net_epochs, final = run(args.epochs)
            rates[name].append(net_epochs / seconds)
            finals[name] = final
    return {name: statistics.median(r) for name, r in rates.items()}, rates, finals


def agreement(finals, n_loop):
    """Largest |difference| of final MSE between methods, on the networks they share."""
    mse = {name: final_mse(*p) for name, p in finals.items()}
    return {
        "loop_vs_batched": float(np.max(np.abs(mse["loop"] - mse["batched"][:n_loop]))),
        "batched_threads_vs_batched": float(np.max(np.abs(mse["batched_threads"] - mse["batched"]))),
        "kernel_f64_vs_batched": float(np.max(np.abs(mse["kernel_f64"] - mse["batched"]))),
        "kernel_f32_vs_batched": float(np.max(np.abs(mse["kernel_f32"] - mse["batched"]))),
    }, mse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--networks", type=int, default=4096, help="networks for batched and kernels")
    ap.add_argument("--loop-networks", type=int, default=16, help="networks for the (slow) loop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the kernels and of batched_threads")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    args = ap.parse_args(argv)
    if args.loop_networks > args.networks:
        ap.error("--loop-networks must not exceed --networks")

    rate, all_rates, finals = measure(args)
    agree, mse = agreement(finals, args.loop_networks)
    startup = None if args.no_startup else measure_startup(clear_cache=True)

    print(f"2-{H}-1 sigmoid networks on XOR, MSE, lr {LR}, randn x 1 init, {args.epochs} epochs; "
          f"loop on {args.loop_networks} networks, the others on {args.networks}; "
          f"kernels on {args.threads} thread(s); median of {args.repeats}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print()
    header = f"{'method':<16}{'network-epochs/s':>18}{'vs loop':>12}{'vs batched':>12}   runs (M/s)"
    print(header)
    print("-" * len(header))
    for name in ("loop", "batched", "batched_threads", "kernel_f64", "kernel_f32"):
        runs = " ".join(f"{r / 1e6:.3g}" for r in all_rates[name])
        print(f"{name:<16}{rate[name]:>18,.0f}{rate[name] / rate['loop']:>11.1f}x"
              f"{rate[name] / rate['batched']:>11.2f}x   {runs}")
    print()
    conv = {name: float(np.mean(m < 0.01)) for name, m in mse.items()}
    print("same workload: max |final MSE difference| loop vs batched "
          f"{agree['loop_vs_batched']:.1e}, kernel_f64 vs batched {agree['kernel_f64_vs_batched']:.1e}, "
          f"kernel_f32 vs batched {agree['kernel_f32_vs_batched']:.1e}; "
          f"final MSE < 0.01: batched {conv['batched']:.1%}, kernel_f64 {conv['kernel_f64']:.1%}")
    if startup is not None:
        print(format_startup(startup))
    print()
    vs_loop = rate["kernel_f64"] / rate["loop"]
    vs_batched = rate["kernel_f64"] / rate["batched"]
    pass_loop, pass_batched = vs_loop >= BAR_LOOP, vs_batched >= BAR_BATCHED
    print(f"bar: kernel_f64 >= {BAR_LOOP:g}x loop:    {vs_loop:9.1f}x  {'PASS' if pass_loop else 'FAIL'}")
    print(f"bar: kernel_f64 >= {BAR_BATCHED:g}x batched:  {vs_batched:9.2f}x  {'PASS' if pass_batched else 'FAIL'}"
          f"   (against batched_threads: {rate['kernel_f64'] / rate['batched_threads']:.2f}x)")

    out = {name: rate[name] for name in ("loop", "batched", "kernel_f64", "kernel_f32")}
    out.update({
        "kernel_f64_vs_loop": vs_loop,
        "kernel_f64_vs_batched": vs_batched,
        "kernel_f32_vs_loop": rate["kernel_f32"] / rate["loop"],
        "kernel_f32_vs_batched": rate["kernel_f32"] / rate["batched"],
        "batched_threads": rate["batched_threads"],
        "kernel_f64_vs_batched_threads": rate["kernel_f64"] / rate["batched_threads"],
        "pass_500x_loop": bool(pass_loop),
        "pass_15x_batched": bool(pass_batched),
        "epochs": args.epochs,
        "networks": args.networks,
        "loop_networks": args.loop_networks,
        "threads": args.threads,
        "repeats": args.repeats,
        "max_final_mse_diff": agree,
    })
    if startup is not None:
        out.update({k: startup[k] for k in ("startup_first_s", "startup_second_s", "startup_baseline_s")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()

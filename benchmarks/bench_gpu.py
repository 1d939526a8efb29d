"""Throughput of the CUDA kernel against the CPU kernels, measured in one run on one machine.

    python benchmarks/bench_gpu.py [--networks 1000000] [--epochs 1000]
        [--cpu-networks 65536] [--cpu-epochs 1000] [--repeats 3]
        [--threads-per-block 128] [--tune] [--small]

The workload is bench_kernels.py's: 2-4-1 sigmoid networks on XOR (4 samples),
initial weights standard normal x 1 (`np.random.default_rng(0)`, kernel layout),
zero biases, MSE, lr 0.5, full-batch gradient descent, no early stop.

  gpu_f32, gpu_f64  kernels.cuda.train_cuda on `--networks` networks x `--epochs`
                    epochs, all in one launch. Timed: the whole call -- argument
                    checks, host-to-device copies, the kernel, device-to-host copies
                    of the statistics and weights -- but not compilation (a warm-up
                    call compiles first). The kernel's share is shown beside it.
  cpu_f64, cpu_f32  kernels.train (the Numba CPU kernels) on all cores, on the first
                    `--cpu-networks` of the same networks x `--cpu-epochs` epochs:
                    fewer than the GPU's, since a CPU takes minutes for the full
                    workload; rates are network-epochs per second either way.

Each method is timed `--repeats` times, the methods taking turns; the median is
reported. The final MSE of the networks both trained (same epochs) is compared
to show the GPU and CPU trained the same thing. `--tune` first times the
kernel alone at several block sizes. `--small` is a quick run (4096 networks x
100 epochs); it is also the only way to run on numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1), to smoke-test this script, where it is smaller
still and its numbers mean nothing.

Without a usable GPU it prints one line saying why and exits with status 2.
Output: a table, the agreement and the target check (gpu_f32 >= 1e10
network-epochs/s), then as the last line one JSON object with keys gpu_f32,
gpu_f64, cpu_f64, cpu_f32 (network-epochs per second), the ratios
gpu_f32_vs_cpu_f32, gpu_f64_vs_cpu_f64, gpu_f32_vs_cpu_f64, and the parameters.
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

from benchmarks.bench_kernels import LR, X, Y, final_mse, initial_networks  # noqa: E402
from kernels import train  # noqa: E402
from kernels.cuda import cuda_available, simulated, train_cuda  # noqa: E402

TARGET_F32 = 1e10


def copies(nets, n, dtype):
    return [np.array(p[..., :n], dtype=dtype, order="C", copy=True) for p in nets]


def run_gpu(nets, n, epochs, dtype, tpb):
    params = copies(nets, n, dtype)
    timings = {}
    t0 = time.perf_counter()
    train_cuda(X.astype(dtype), Y.astype(dtype), *params, epochs, lr=LR, loss="mse", checkpoints=0,
               threads_per_block=tpb, timings=timings)
    seconds = time.perf_counter() - t0
    return seconds, timings["kernel"], n * epochs, params


def run_cpu(nets, n, epochs, dtype, threads):
    params = copies(nets, n, dtype)
    t0 = time.perf_counter()
    train(X.astype(dtype), Y.astype(dtype), *params, epochs, lr=LR, loss="mse", checkpoints=0, threads=threads)
    seconds = time.perf_counter() - t0
    return seconds, None, n * epochs, params


def tune(nets, args):
    """Kernel-only rate at several block sizes (one run each, after a warm-up)."""
    n = min(args.networks, 262144)
    print(f"block sizes ({n:,} networks x {args.epochs:,} epochs, kernel only, G network-epochs/s):")
    for dtype in (np.float32, np.float64):
        cells = []
        for tpb in (32, 64, 128, 256, 512):
            run_gpu(nets, 1024, 2, dtype, tpb)
            _, kernel_s, net_epochs, _ = run_gpu(nets, n, args.epochs, dtype, tpb)
            cells.append(f"{tpb}: {net_epochs / kernel_s / 1e9:.2f}")
        print(f"  {np.dtype(dtype).name}: " + "  ".join(cells))
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=1_000_000, help="networks trained on the GPU")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--cpu-networks", type=int, default=65536, help="networks trained on the CPU (the first of the GPU's)")
    ap.add_argument("--cpu-epochs", type=int, default=None, help="epochs on the CPU (default: --epochs)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads-per-block", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of kernels.train")
    ap.add_argument("--tune", action="store_true", help="first time the kernel at several block sizes")
    ap.add_argument("--small", action="store_true", help="a quick run (and the only one the CUDA simulator allows)")
    args = ap.parse_args(argv)

    ok, device = cuda_available()
    if not ok:
        print(f"bench_gpu: no GPU to benchmark: {device}", file=sys.stderr)
        return 2
    on_simulator = simulated()
    if on_simulator and not args.small:
        print("bench_gpu: no GPU to benchmark: numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1); "
              "--small smoke-tests this script on it", file=sys.stderr)
        return 2
    if args.small:
        args.networks, args.epochs = (64, 10) if on_simulator else (4096, 100)
        args.cpu_networks = min(args.cpu_networks, args.networks)
        args.tune = args.tune and not on_simulator
    args.cpu_networks = min(args.cpu_networks, args.networks)
    cpu_epochs = args.cpu_epochs or args.epochs

    nets = initial_networks(args.networks)
    for p in nets:
        p.flags.writeable = False  # every method trains copies
    if args.tune:
        tune(nets, args)
    tpb = args.threads_per_block
    methods = {
        "gpu_f32": lambda n, ep: run_gpu(nets, n, ep, np.float32, tpb),
        "gpu_f64": lambda n, ep: run_gpu(nets, n, ep, np.float64, tpb),
        "cpu_f64": lambda n, ep: run_cpu(nets, n, ep, np.float64, args.threads),
        "cpu_f32": lambda n, ep: run_cpu(nets, n, ep, np.float32, args.threads),
    }
    size = {"gpu_f32": (args.networks, args.epochs), "gpu_f64": (args.networks, args.epochs),
            "cpu_f64": (args.cpu_networks, cpu_epochs), "cpu_f32": (args.cpu_networks, cpu_epochs)}
    for run in methods.values():  # warm-up: compilation (GPU kernels, CPU kernels' cache), allocator
        run(min(1024, args.cpu_networks), 2)
    rates = {name: [] for name in methods}
    kernel_rates = {name: [] for name in methods}
    finals = {}
    for _ in range(args.repeats):  # the methods take turns, so drift hits all alike
        for name, run in methods.items():
            seconds, kernel_s, net_epochs, final = run(*size[name])
            rates[name].append(net_epochs / seconds)
            if kernel_s:
                kernel_rates[name].append(net_epochs / kernel_s)
            finals[name] = final
    rate = {name: statistics.median(r) for name, r in rates.items()}
    kernel_rate = {name: statistics.median(r) for name, r in kernel_rates.items() if r}

    n_shared = args.cpu_networks
    same_epochs = cpu_epochs == args.epochs
    mse = {name: final_mse(*(p[..., :n_shared] for p in finals[name])) for name in finals}
    agree = {f"{d}_gpu_vs_cpu": float(np.max(np.abs(mse[f"gpu_{d}"] - mse[f"cpu_{d}"]))) for d in ("f64", "f32")}

    where = "CUDA simulator (not a GPU: these numbers mean nothing)" if on_simulator else device
    print(f"GPU: {where}; CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"workload: 2-4-1 sigmoid networks on XOR, MSE, lr {LR}, randn x 1 init, zero biases; median of {args.repeats}")
    print(f"GPU: {args.networks:,} networks x {args.epochs:,} epochs in one launch, {tpb} threads per block; "
          "timed: the whole train_cuda call, host<->device copies included, compilation excluded")
    print(f"CPU: kernels.train on {args.threads} threads, {args.cpu_networks:,} networks x {cpu_epochs:,} epochs "
          "(a smaller workload than the GPU's; the rates are per network-epoch)")
    print()
    header = f"{'method':<10}{'network-epochs/s':>20}{'kernel only':>16}{'vs cpu_f64':>12}{'vs cpu_f32':>12}   runs (G/s)"
    print(header)
    print("-" * len(header))
    for name in methods:
        k = f"{kernel_rate[name]:>16.4g}" if name in kernel_rate else f"{'':>16}"
        runs = " ".join(f"{r / 1e9:.3g}" for r in rates[name])
        print(f"{name:<10}{rate[name]:>20.4g}{k}{rate[name] / rate['cpu_f64']:>11.1f}x"
              f"{rate[name] / rate['cpu_f32']:>11.1f}x   {runs}")
    print()
    if same_epochs:
        print(f"same networks ({n_shared:,}), same epochs: max |final MSE difference| GPU vs CPU "
              f"{agree['f64_gpu_vs_cpu']:.1e} (float64), {agree['f32_gpu_vs_cpu']:.1e} (float32); "
              f"final MSE < 0.01: gpu_f64 {np.mean(mse['gpu_f64'] < 0.01):.1%}, cpu_f64 {np.mean(mse['cpu_f64'] < 0.01):.1%}")
    passed = rate["gpu_f32"] >= TARGET_F32
    print(f"target: gpu_f32 >= {TARGET_F32:.0e} network-epochs/s: {rate['gpu_f32']:.3g}  "
          f"{'PASS' if passed else 'FAIL'}{' (simulator)' if on_simulator else ''}")

    out = {name: rate[name] for name in ("gpu_f32", "gpu_f64", "cpu_f64", "cpu_f32")}
    out.update({
        "gpu_f32_vs_cpu_f32": rate["gpu_f32"] / rate["cpu_f32"],
        "gpu_f64_vs_cpu_f64": rate["gpu_f64"] / rate["cpu_f64"],
        "gpu_f32_vs_cpu_f64": rate["gpu_f32"] / rate["cpu_f64"],
        "gpu_f32_kernel_only": kernel_rate["gpu_f32"],
        "gpu_f64_kernel_only": kernel_rate["gpu_f64"],
        "pass_1e10_f32": bool(passed),
        "device": where,
        "simulator": on_simulator,
        "networks": args.networks,
        "epochs": args.epochs,
        "cpu_networks": args.cpu_networks,
        "cpu_epochs": cpu_epochs,
        "cpu_threads": args.threads,
        "threads_per_block": tpb,
        "repeats": args.repeats,
        "transfers_included": True,
        "max_final_mse_diff": agree if same_epochs else None,
    })
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

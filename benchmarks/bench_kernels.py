"""Throughput of the kernels against the NumPy peers, measured in one run.

    python benchmarks/bench_kernels.py [--epochs 2000] [--networks 4096]
        [--repeats 3] [--loop-networks 16] [--threads N] [--no-startup]
        [--shapes xor,gaussian,teacher|none] [--shapes-only] [--shape-scale F]
        [--tile N] [--tile-sweep] [--no-jax] [--no-asm]

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
  kernel_f32  the same in float32;
  jax_f64     the JAX peer (benchmarks.peers.train_jax: jax.jit(jax.vmap(train))
              with lax.scan over the epochs, no statistics), float64, on XLA's
              CPU backend (a thread per CPU of the process; `taskset` limits
              it); the peer that decides (issue 15);
  jax_f32     the same in float32.

Each method is warmed up once on a small case (compilation), then timed
`--repeats` times, the methods taking turns; the median is reported, in
network-epochs per second. JAX compiles per shape and epoch count, so its
warm-up is an ahead-of-time compilation of the timed workload itself
(benchmarks.peers.compile_jax; its seconds are reported) followed by one
untimed call of the compiled program; every timed JAX call runs that same
compiled program: warm calls only. Without jax installed
(the `bench` extra) or with --no-jax, the JAX rows are skipped with one line.
Each method's CPU time over wall time is reported (how many threads were
busy), and its cycles per network-epoch per core: the nominal clock (the
first "cpu MHz" of /proc/cpuinfo, else lscpu's "CPU MHz") times the threads
used, over the rate; the threads used are `--threads` for the kernels and
batched_threads, 1 for loop and batched, and for JAX the size of XLA's CPU
thread pool (`xla_threads`: the CPUs the process may run on; how busy XLA
kept them is its CPU/wall). Beside the kernels' cycles (unless --no-asm),
the instructions they execute per network-epoch in their compiled loops
over lanes, counted from their assembly (benchmarks/vector_instructions.py),
and the two's ratio, instructions per cycle: how close the loops run to
what the core can issue. The final losses of the methods are compared on
the networks they share, to show they trained the same thing. Then (unless
--no-startup) the start-up time of a fresh process calling the kernels is
measured with the Numba cache cleared and again with it filled
(benchmarks/startup.py; this deletes kernels/__pycache__/*.nbi|*.nbc first).

Shapes (unless --shapes none): the kernels against the batched NumPy peer
across the model family, on three workloads (`SHAPES`), each in float64 and
float32:

  xor       2-4-1, sigmoid hidden, sigmoid output, MSE, reduction sum, lr 0.5,
            XOR (4 samples), randn x 1 init, zero biases (the workload above);
            4096 networks x 2000 epochs;
  gaussian  16-16-1, tanh hidden, identity output, MSE, reduction mean,
            lr 0.05, standard scaling; 272 samples, inputs and targets N(0, 1)
            (np.random.default_rng(0)); LeCun init W1 ~ N(0, 1/D),
            W2 ~ N(0, 1/H), zero biases (stays finite: its loss falls from
            1.37 to 0.04 over 5000 epochs); 256 networks x 40 epochs;
  teacher   8-64-1, tanh hidden, identity output, MSE, reduction mean,
            lr 0.05, standard scaling; 64 samples, inputs N(0, 1), targets of
            a random tanh teacher 8-8-1 without biases (W1 N(0,1)/sqrt(8),
            W2 N(0,1)/sqrt(8)); LeCun init as above; 256 networks x 50 epochs.

The networks and epochs make each timing 0.3-2 s on the 2-core machine.

For each: kernel_f64 and kernel_f32 (kernels.train on `--threads` threads, at
the tile `--tile` or else kernels.batch.default_tile's for the shape), and
peer_f64 and peer_f32 (benchmarks.peers.train_batched, one thread: the script
sets OPENBLAS_NUM_THREADS=1 unless it is set), taking
turns, medians of `--repeats`, in network-epochs/s and GFLOP/s, with the
kernel/peer ratios. FLOPs per network-epoch are counted analytically
(`flops_per_network_epoch`), for N samples, D inputs, H hidden units:

  forward      2NDH (X W1) + 2NH (a1 W2)
  backward     2NDH (dW1 = X^T dZ1) + 2NH (dW2 = a1^T dZ2)
               + 2NH (dA1 = dZ2 W2^T) + NH (dZ1 = dA1 f'(a1))
  activations  NH + N (one FLOP each, hidden and output units)
  total        4NDH + 8NH + N

(biases, the loss, the output delta and the once-an-epoch update are not
counted): 260 for xor, 313,616 for gaussian, 163,904 for teacher. The final
MSE of every lane (computed in float64 from the final weights) is compared
between the methods, relative to the peer's, to show they trained the same
thing. `--shape-scale` scales the shapes' epochs (a smoke test: 0.01).

--tile-sweep: for each shape and dtype, the kernel timed at tiles 8, 16,
32, 64, 128 (those <= kernels.vocab.TILE_LANES of the dtype), taking turns,
medians of `--repeats`, the default tile marked; the final weights must be
bitwise the same at every tile.

Output: a table, the bar checks (float64 kernels >= 500x loop; the ratio to
batched NumPy, whose 15x bar issue 15 retired; with JAX, issue 15's:
kernel_f64 >= 3x jax_f64 and kernel_f32 >= 5x jax_f32, printed PASS/FAIL,
never asserted), the shapes' table (and the tile sweep's), and as the last
line one JSON object with keys loop, batched, kernel_f64, kernel_f32
(network-epochs per second) followed by ratios, the
checks, the parameters, the start-up times, jax_f64, jax_f32 and their ratios
and checks (when JAX ran), cpu_per_wall, threads_used,
cycles_per_network_epoch_per_core and cpu_mhz, and under "shapes" (and
"tile_sweep") the shapes' figures. With
--shapes-only the XOR comparison above is skipped, and so are its keys.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# The peers run on one thread: OpenBLAS would otherwise spread the GEMMs of the larger shapes over every
# core (for no gain there). Set before NumPy is imported (a setting already in the environment is kept).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.peers import batched_mse, train_batched, train_loop  # noqa: E402
from benchmarks.startup import format_startup, measure_startup  # noqa: E402

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)
D, H = 2, 4
LR = 0.5
BAR_LOOP = 500.0
BAR_BATCHED = 15.0
BAR_JAX_F64 = 3.0      # issue 15: float64 kernels against JAX float64
BAR_JAX_F32 = 5.0      # issue 15: float32 kernels against JAX float32


def nominal_clock():
    """(MHz, where it was read): the first "cpu MHz" of /proc/cpuinfo, else lscpu's "CPU MHz" / "CPU max MHz";
    (None, reason) when neither has one. Nominal: under a hypervisor it is the host's reported clock, not
    the clock the core runs at under load (boost)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return float(line.split(":", 1)[1]), "/proc/cpuinfo cpu MHz"
    except (OSError, ValueError):
        pass
    try:
        import subprocess
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for key in ("CPU MHz", "CPU max MHz"):
            for line in text.splitlines():
                if line.startswith(key + ":"):
                    return float(line.split(":", 1)[1]), f"lscpu {key}"
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None, "no clock found"


def xla_threads():
    """The threads of XLA's CPU thread pool: the CPUs this process may run on (the pool's default size).
    To run JAX on fewer, restrict the process (taskset -c 0 ...): with jax 0.10.2 the XLA_FLAGS
    --xla_cpu_multi_thread_eigen=false and intra_op_parallelism_threads=1 left its CPU/wall at 1.8 on 2 cores."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def jax_available(args):
    """(True, version text) when the JAX peer can run, else (False, why not)."""
    from benchmarks.peers import jax_version
    if getattr(args, "no_jax", False):
        return False, "--no-jax"
    version = jax_version()
    if version is None:
        return False, "jax is not installed (pip install -e .[bench])"
    return True, f"jax {version[0]}, jaxlib {version[1]}"


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
# (seconds, network-epochs, final parameters in kernel layout); the CPU time
# of the timed region (all threads) is left in CPU_SECONDS.

CPU_SECONDS = []

def run_loop(nets, epochs, n_loop):
    W1, b1, W2, b2 = nets
    copies = [(W1[:, :, i].copy(), b1[:, i].reshape(1, H).copy(),
               W2[:, i].reshape(H, 1).copy(), b2[i:i + 1].reshape(1, 1).copy())
              for i in range(n_loop)]
    t0, c0 = time.perf_counter(), time.process_time()
    for w1, c1, w2, c2 in copies:
        train_loop(X, Y, w1, c1, w2, c2, LR, epochs)
    seconds = time.perf_counter() - t0
    CPU_SECONDS.append(time.process_time() - c0)
    final = (np.stack([c[0] for c in copies], axis=-1), np.stack([c[1][0] for c in copies], axis=-1),
             np.stack([c[2][:, 0] for c in copies], axis=-1), np.array([c[3][0, 0] for c in copies]))
    return seconds, n_loop * epochs, final


def run_batched(nets, epochs, threads=1):
    params = [p.copy() for p in nets]
    t0, c0 = time.perf_counter(), time.process_time()
    train_batched(X, Y, *params, LR, epochs, threads=threads)
    seconds = time.perf_counter() - t0
    CPU_SECONDS.append(time.process_time() - c0)
    return seconds, params[0].shape[-1] * epochs, params


def run_kernel(nets, epochs, dtype, threads, tile=None):
    from kernels import train
    params = [np.array(p, dtype=dtype, order="C", copy=True) for p in nets]  # trained in place
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    t0, c0 = time.perf_counter(), time.process_time()
    train(Xd, Yd, *params, epochs, lr=LR, loss="mse", checkpoints=0, threads=threads, tile=tile)
    seconds = time.perf_counter() - t0
    CPU_SECONDS.append(time.process_time() - c0)
    return seconds, params[0].shape[-1] * epochs, params


def run_jax(nets, epochs, dtype):
    """The JAX peer on copies of the networks converted to `dtype` outside the timed region; the program
    must have been compiled before (compile_jax) for the timing to be a warm call's."""
    from benchmarks.peers import train_jax
    params = [np.array(p, dtype=dtype, copy=True) for p in nets]
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    t0, c0 = time.perf_counter(), time.process_time()
    W1, b1, W2, b2, _ = train_jax(Xd, Yd, *params, epochs, LR, dtype)   # returns when the result is ready
    seconds = time.perf_counter() - t0
    CPU_SECONDS.append(time.process_time() - c0)
    return seconds, params[0].shape[-1] * epochs, (W1, b1, W2, b2)


def compile_jax_workload(n_networks, epochs, dtype):
    """Seconds to compile the JAX peer for the XOR workload of n_networks x epochs (ahead of time)."""
    from benchmarks.peers import compile_jax
    t0 = time.perf_counter()
    compile_jax(X.shape[0], D, H, n_networks, epochs, dtype)
    return time.perf_counter() - t0


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
                                                         np.float64, args.threads, args.tile),
        "kernel_f32": lambda ep, small=False: run_kernel(subset(nets, 64) if small else nets, ep,
                                                         np.float32, args.threads, args.tile),
    }
    compile_s = {}
    if args.jax:
        for name, dt in (("jax_f64", np.float64), ("jax_f32", np.float32)):
            methods[name] = lambda ep, small=False, dt=dt: run_jax(nets, ep, dt)
            compile_s[name] = compile_jax_workload(args.networks, args.epochs, dt)   # the timed workload
    for name, run in methods.items():     # warm-up: compilation, caches, allocator
        # (JAX: compiled above for the timed shape; one untimed call of that program warms the rest)
        if name.startswith("jax"):
            run(args.epochs)
        else:
            run(10, small=True)
    rates = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    finals = {}
    for _ in range(args.repeats):          # the methods take turns, so drift hits all alike
        for name, run in methods.items():
            seconds, net_epochs, final = run(args.epochs)
            rates[name].append(net_epochs / seconds)
            cpu[name].append(CPU_SECONDS[-1] / seconds)
            finals[name] = final
    extra = {"cpu_per_wall": {name: statistics.median(c) for name, c in cpu.items()}, "jax_compile_s": compile_s}
    return {name: statistics.median(r) for name, r in rates.items()}, rates, finals, extra


def agreement(finals, n_loop):
    """Largest |difference| of final MSE between methods, on the networks they share."""
    mse = {name: final_mse(*p) for name, p in finals.items()}
    diff = {
        "loop_vs_batched": float(np.max(np.abs(mse["loop"] - mse["batched"][:n_loop]))),
        "batched_threads_vs_batched": float(np.max(np.abs(mse["batched_threads"] - mse["batched"]))),
        "kernel_f64_vs_batched": float(np.max(np.abs(mse["kernel_f64"] - mse["batched"]))),
        "kernel_f32_vs_batched": float(np.max(np.abs(mse["kernel_f32"] - mse["batched"]))),
    }
    for name in ("jax_f64", "jax_f32"):
        if name in mse:
            diff[name + "_vs_batched"] = float(np.max(np.abs(mse[name] - mse["batched"])))
    return diff, mse


# --------------------------------------------------------------------------
# Shapes: the model family on three workloads, kernel against the peer.
# --------------------------------------------------------------------------

SHAPE_NAMES = ("xor", "gaussian", "teacher")
SWEEP_TILES = (8, 16, 32, 64, 128)


def flops_per_network_epoch(n_samples, n_inputs, hidden):
    """FLOPs of one network-epoch (one full-batch step) of a D-H-1 network on N samples, analytically:

        forward      2NDH (X W1) + 2NH (a1 W2)
        backward     2NDH (dW1) + 2NH (dW2) + 2NH (dA1) + NH (dZ1 = dA1 f'(a1))
        activations  NH + N (one each)
        total        4NDH + 8NH + N

    Biases, the loss, the output delta and the update are not counted."""
    N, D, H = n_samples, n_inputs, hidden
    forward = 2 * N * D * H + 2 * N * H
    backward = 2 * N * D * H + 2 * N * H + 2 * N * H + N * H
    activations = N * H + N
    return forward + backward + activations


def make_workload(name, epochs_scale=1.0):
    """One of SHAPE_NAMES: data, model, lr, initial networks (float64, kernel layout), networks, epochs."""
    family = dict(activation="tanh", output="identity", bias=True, scaling="standard", reduction="mean")
    if name == "xor":
        Xw, Yw = X, Y
        family = dict(activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum")
        lr, networks, epochs, init = LR, 4096, 2000, "randn x 1"
        desc = "2-4-1 sigmoid/sigmoid, XOR (4 samples), MSE, sum, standard, lr 0.5, randn x 1 init"
    elif name == "gaussian":
        rng = np.random.default_rng(0)
        Xw = rng.standard_normal((272, 16))
        Yw = rng.standard_normal(272)
        lr, networks, epochs, init = 0.05, 256, 40, "lecun"
        desc = "16-16-1 tanh/identity, 272 N(0,1) inputs and targets, MSE, mean, standard, lr 0.05, LeCun init"
    elif name == "teacher":
        rng = np.random.default_rng(0)
        Xw = rng.standard_normal((64, 8))
        TW1 = rng.standard_normal((8, 8)) / np.sqrt(8)
        TW2 = rng.standard_normal(8) / np.sqrt(8)
        Yw = np.tanh(Xw @ TW1) @ TW2
        lr, networks, epochs, init = 0.05, 256, 50, "lecun"
        desc = "8-64-1 tanh/identity, 64 samples of a tanh teacher 8-8-1, MSE, mean, standard, lr 0.05, LeCun init"
    else:
        raise ValueError(f"unknown shape {name!r}; expected one of {', '.join(SHAPE_NAMES)}")
    n_samples, n_inputs = Xw.shape
    hidden = H if name == "xor" else {"gaussian": 16, "teacher": 64}[name]
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((n_inputs, hidden, networks))
    W2 = rng.standard_normal((hidden, networks))
    if init == "lecun":
        W1 /= np.sqrt(n_inputs)
        W2 /= np.sqrt(hidden)
    nets = (W1, np.zeros((hidden, networks)), W2, np.zeros(networks))
    for p in nets:
        p.flags.writeable = False      # every method trains copies
    return dict(name=name, desc=desc, X=Xw, Y=Yw, family=family, lr=lr, nets=nets, networks=networks,
                epochs=max(1, int(round(epochs * epochs_scale))), N=n_samples, D=n_inputs, H=hidden,
                flops=flops_per_network_epoch(n_samples, n_inputs, hidden))


def run_kernel_family(w, nets, epochs, dtype, threads, tile):
    from kernels import train
    params = [np.array(p, dtype=dtype, order="C", copy=True) for p in nets]  # trained in place
    Xd, Yd = w["X"].astype(dtype), w["Y"].astype(dtype)
    t0 = time.perf_counter()
    train(Xd, Yd, *params, epochs, lr=w["lr"], loss="mse", checkpoints=0, threads=threads, tile=tile, **w["family"])
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def run_peer_family(w, nets, epochs, dtype):
    params = [np.array(p, dtype=dtype, copy=True) for p in nets]
    t0 = time.perf_counter()
    train_batched(w["X"], w["Y"], *params, w["lr"], epochs, **w["family"])
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def family_mse(w, params):
    fam = {k: v for k, v in w["family"].items() if k != "reduction"}
    return batched_mse(w["X"], w["Y"], *params, **fam)


def max_rel_diff(a, b):
    """Largest |a - b| / |b| over lanes (0 where both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b) / scale))


def measure_shape(w, args):
    """The four methods on one workload, taking turns; medians and agreement."""
    from kernels.batch import default_tile
    nets, epochs = w["nets"], w["epochs"]
    small = subset(nets, 16)
    methods = {
        "kernel_f64": lambda n, ep: run_kernel_family(w, n, ep, np.float64, args.threads, args.tile),
        "peer_f64": lambda n, ep: run_peer_family(w, n, ep, np.float64),
        "kernel_f32": lambda n, ep: run_kernel_family(w, n, ep, np.float32, args.threads, args.tile),
        "peer_f32": lambda n, ep: run_peer_family(w, n, ep, np.float32),
    }
    for run in methods.values():          # warm-up: compilation (or the cache), allocator
        run(small, 3)
    rates = {name: [] for name in methods}
    finals = {}
    for _ in range(args.repeats):
        for name, run in methods.items():
            seconds, net_epochs, final = run(nets, epochs)
            rates[name].append(net_epochs / seconds)
            finals[name] = final
    rate = {name: statistics.median(r) for name, r in rates.items()}
    mse = {name: family_mse(w, p) for name, p in finals.items()}
    tiles = {dt: int(default_tile(dt, w["N"], w["D"], w["H"])) for dt in ("float64", "float32")}
    res = {
        "desc": w["desc"], "N": w["N"], "D": w["D"], "H": w["H"], "networks": w["networks"], "epochs": epochs,
        "model": w["family"], "lr": w["lr"],
        "flops_per_network_epoch": w["flops"],
        "default_tile": tiles,
        "tile": {dt: int(args.tile) if args.tile else tiles[dt] for dt in tiles},
        "threads": args.threads,
    }
    for name in methods:
        res[name] = rate[name]
        res[name + "_gflops"] = rate[name] * w["flops"] / 1e9
    res.update({
        "kernel_f64_vs_peer_f64": rate["kernel_f64"] / rate["peer_f64"],
        "kernel_f32_vs_peer_f32": rate["kernel_f32"] / rate["peer_f32"],
        "kernel_f32_vs_peer_f64": rate["kernel_f32"] / rate["peer_f64"],
        "final_mse_median": float(np.median(mse["peer_f64"])),
        "all_finite": bool(all(np.all(np.isfinite(m)) for m in mse.values())),
        "max_rel_final_mse_diff": {
            "kernel_f64_vs_peer_f64": max_rel_diff(mse["kernel_f64"], mse["peer_f64"]),
            "kernel_f32_vs_peer_f32": max_rel_diff(mse["kernel_f32"], mse["peer_f32"]),
            "kernel_f32_vs_peer_f64": max_rel_diff(mse["kernel_f32"], mse["peer_f64"]),
            "peer_f32_vs_peer_f64": max_rel_diff(mse["peer_f32"], mse["peer_f64"]),
        },
    })
    return res, rates


def print_shapes(shapes, all_rates, args):
    print(f"shapes: kernels on {args.threads} thread(s), peer (benchmarks.peers.train_batched) on 1; "
          f"median of {args.repeats}; GFLOP/s from flops_per_network_epoch = 4NDH + 8NH + N")
    for name, r in shapes.items():
        print(f"  {name:<9}{r['desc']}; {r['networks']} networks x {r['epochs']} epochs")
    header = (f"{'shape':<10}{'D-H-1, N':<14}{'flop/net-ep':>11}{'nets x epochs':>15}  {'method':<11}{'tile':>5}"
              f"{'net-epochs/s':>14}{'GFLOP/s':>9}{'vs peer':>9}   runs (M/s)")
    print(header)
    print("-" * len(header))
    for name, r in shapes.items():
        first = True
        for method in ("kernel_f64", "peer_f64", "kernel_f32", "peer_f32"):
            dt = "float64" if method.endswith("64") else "float32"
            kern = method.startswith("kernel")
            tile = str(r["tile"][dt]) if kern else "-"
            ratio = f"{r[method] / r['peer_' + method[-3:]]:.2f}x" if kern else ""
            size = f"{r['D']}-{r['H']}-1, {r['N']}"
            lead = (f"{name:<10}{size:<14}{r['flops_per_network_epoch']:>11,}"
                    f"{r['networks']:>7} x {r['epochs']:<5}") if first else " " * 50
            runs = " ".join(f"{x / 1e6:.3g}" for x in all_rates[name][method])
            print(f"{lead}  {method:<11}{tile:>5}{r[method]:>14,.0f}{r[method + '_gflops']:>9.2f}{ratio:>9}   {runs}")
            first = False
        d = r["max_rel_final_mse_diff"]
        print(f"{'':<10}same workload: max rel. final-MSE diff kernel_f64 vs peer_f64 "
              f"{d['kernel_f64_vs_peer_f64']:.1e}, kernel_f32 vs peer_f32 {d['kernel_f32_vs_peer_f32']:.1e}, "
              f"kernel_f32 vs peer_f64 {d['kernel_f32_vs_peer_f64']:.1e}; median final MSE "
              f"{r['final_mse_median']:.3g}; finite: {r['all_finite']}; default tile f64 "
              f"{r['default_tile']['float64']}, f32 {r['default_tile']['float32']}")
    print()


def tile_sweep(workloads, args):
    """The kernel at each tile of SWEEP_TILES (<= TILE_LANES), per shape and dtype, taking turns."""
    from kernels.batch import default_tile
    from kernels.vocab import TILE_LANES
    table = {}
    for w in workloads:
        table[w["name"]] = {}
        for dt in (np.float64, np.float32):
            name = np.dtype(dt).name
            tiles = [t for t in SWEEP_TILES if t <= TILE_LANES[name]]
            run = {t: (lambda n, ep, t=t: run_kernel_family(w, n, ep, dt, args.threads, t)) for t in tiles}
            for t in tiles:
                run[t](subset(w["nets"], 16), 3)
            rates = {t: [] for t in tiles}
            finals = {}
            for _ in range(args.repeats):
                for t in tiles:
                    seconds, net_epochs, final = run[t](w["nets"], w["epochs"])
                    rates[t].append(net_epochs / seconds)
                    finals[t] = final
            same = all(all(np.array_equal(p, q) for p, q in zip(finals[tiles[0]], finals[t])) for t in tiles)
            table[w["name"]][name] = {
                "default_tile": int(default_tile(dt, w["N"], w["D"], w["H"])),
                "rates": {str(t): statistics.median(r) for t, r in rates.items()},
                "runs": {str(t): r for t, r in rates.items()},
                "bitwise_same_across_tiles": bool(same),
                "flops_per_network_epoch": w["flops"],
            }
    return table


def print_tile_sweep(table, args):
    print(f"tile sweep: kernel network-epochs/s (GFLOP/s) by tile, {args.threads} thread(s), median of "
          f"{args.repeats}; * = default_tile; best in []")
    header = f"{'shape':<10}{'dtype':<9}" + "".join(f"{t:>20}" for t in SWEEP_TILES) + "   best/default  same"
    print(header)
    print("-" * len(header))
    for shape, by_dtype in table.items():
        for dt, r in by_dtype.items():
            best = max(r["rates"], key=r["rates"].get)
            cells = []
            for t in SWEEP_TILES:
                v = r["rates"].get(str(t))
                if v is None:
                    cells.append(f"{'-':>20}")
                    continue
                txt = f"{v / 1e6:.3g}M ({v * r['flops_per_network_epoch'] / 1e9:.2f})"
                txt += "*" if t == r["default_tile"] else " "
                txt = f"[{txt}]" if str(t) == best else f" {txt} "
                cells.append(f"{txt:>20}")
            default = r["rates"].get(str(r["default_tile"]))
            gain = r["rates"][best] / default if default else float("nan")
            print(f"{shape:<10}{dt:<9}" + "".join(cells) + f"   {gain:10.2f}x   {r['bitwise_same_across_tiles']}")
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--networks", type=int, default=4096, help="networks for batched and kernels")
    ap.add_argument("--loop-networks", type=int, default=16, help="networks for the (slow) loop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads of the kernels and of batched_threads")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    ap.add_argument("--tile", type=int, default=None,
                    help="lanes per kernel tile (default: kernels.batch.default_tile of the shape)")
    ap.add_argument("--shapes", default=",".join(SHAPE_NAMES),
                    help=f"comma-separated workloads of the shapes' comparison ({', '.join(SHAPE_NAMES)}), or none")
    ap.add_argument("--shapes-only", action="store_true", help="skip the XOR comparison with the loop (and its bars)")
    ap.add_argument("--shape-scale", type=float, default=1.0, help="scale the shapes' epochs (0.01: a smoke test)")
    ap.add_argument("--tile-sweep", action="store_true",
                    help=f"time the kernel at tiles {', '.join(map(str, SWEEP_TILES))} per shape and dtype")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX peer of the XOR comparison")
    ap.add_argument("--no-asm", action="store_true",
                    help="skip the count of instructions per network-epoch in the kernels' compiled loops "
                         "(benchmarks/vector_instructions.py: about 30 s a dtype)")
    args = ap.parse_args(argv)
    if args.loop_networks > args.networks:
        ap.error("--loop-networks must not exceed --networks")
    if args.tile is not None and args.tile < 1:
        ap.error("--tile must be >= 1")
    shape_names = [n.strip() for n in args.shapes.split(",") if n.strip()]
    if shape_names == ["none"]:
        shape_names = []
    bad = [n for n in shape_names if n not in SHAPE_NAMES]
    if bad:
        ap.error(f"unknown shape {bad[0]!r}; expected some of {', '.join(SHAPE_NAMES)} or none")
    if args.shapes_only and not shape_names:
        ap.error("--shapes-only needs at least one shape")
    workloads = [make_workload(n, args.shape_scale) for n in shape_names]

    out = {}
    if not args.shapes_only:
        out = xor_comparison(args)
    shapes, shape_rates = {}, {}
    for w in workloads:
        shapes[w["name"]], shape_rates[w["name"]] = measure_shape(w, args)
    if shapes:
        print_shapes(shapes, shape_rates, args)
        out["shapes"] = shapes
    if args.tile_sweep and workloads:
        sweep = tile_sweep(workloads, args)
        print_tile_sweep(sweep, args)
        out["tile_sweep"] = sweep
    print(json.dumps(out))


def xor_comparison(args):
    """The XOR table and the bars; returns the JSON figures."""
    args.jax, jax_note = jax_available(args)
    rate, all_rates, finals, extra = measure(args)
    agree, mse = agreement(finals, args.loop_networks)
    startup = None if args.no_startup else measure_startup(clear_cache=True)
    mhz, clock_source = nominal_clock()
    cpu_per_wall = extra["cpu_per_wall"]
    threads_used = {"loop": 1, "batched": 1, "batched_threads": args.threads,
                    "kernel_f64": args.threads, "kernel_f32": args.threads}
    for name in ("jax_f64", "jax_f32"):
        if name in rate:
            threads_used[name] = xla_threads()
    cycles = {name: (mhz * 1e6 * threads_used[name] / rate[name] if mhz else None) for name in rate}

    print(f"2-{H}-1 sigmoid networks on XOR, MSE, lr {LR}, randn x 1 init, {args.epochs} epochs; "
          f"loop on {args.loop_networks} networks, the others on {args.networks}; "
          f"kernels on {args.threads} thread(s), tile {args.tile or 'default'}; median of {args.repeats}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    if args.jax:
        print(f"JAX peer: {jax_note}, XLA CPU backend, XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')!r}; "
              f"compiled ahead of time for this workload ("
              + ", ".join(f"{n} {s:.1f} s" for n, s in extra["jax_compile_s"].items())
              + ") and called once untimed; the timed calls are warm")
    else:
        print(f"JAX peer skipped: {jax_note}")
    print(f"cycles/net-epoch/core = nominal clock {mhz or float('nan'):.0f} MHz ({clock_source}) x threads used "
          f"/ rate; threads used: kernels and batched_threads {args.threads}, loop and batched 1"
          + (f", JAX {xla_threads()} (XLA's CPU thread pool)" if args.jax else ""))
    print()
    jax_cols = "jax_f64" in rate
    header = (f"{'method':<16}{'network-epochs/s':>18}{'vs loop':>12}{'vs batched':>12}"
              + (f"{'vs JAX':>10}" if jax_cols else "") + f"{'cpu/wall':>10}{'cycles':>9}   runs (M/s)")
    print(header)
    print("-" * len(header))
    for name in ("loop", "batched", "batched_threads", "kernel_f64", "kernel_f32", "jax_f64", "jax_f32"):
        if name not in rate:
            continue
        runs = " ".join(f"{r / 1e6:.3g}" for r in all_rates[name])
        peer = "jax_f32" if name.endswith("f32") else "jax_f64"
        vs_jax = (f"{rate[name] / rate[peer]:>9.2f}x" if name != peer else f"{'':>10}") if jax_cols else ""
        cyc = f"{cycles[name]:>9.0f}" if cycles[name] is not None else f"{'-':>9}"
        print(f"{name:<16}{rate[name]:>18,.0f}{rate[name] / rate['loop']:>11.1f}x"
              f"{rate[name] / rate['batched']:>11.2f}x{vs_jax}{cpu_per_wall[name]:>10.2f}{cyc}   {runs}")
    print()
    conv = {name: float(np.mean(m < 0.01)) for name, m in mse.items()}
    print("same workload: max |final MSE difference| loop vs batched "
          f"{agree['loop_vs_batched']:.1e}, kernel_f64 vs batched {agree['kernel_f64_vs_batched']:.1e}, "
          f"kernel_f32 vs batched {agree['kernel_f32_vs_batched']:.1e}"
          + (f", jax_f64 vs batched {agree['jax_f64_vs_batched']:.1e}, jax_f32 vs batched "
             f"{agree['jax_f32_vs_batched']:.1e}" if jax_cols else "")
          + f"; final MSE < 0.01: batched {conv['batched']:.1%}, kernel_f64 {conv['kernel_f64']:.1%}")
    if startup is not None:
        print(format_startup(startup))
    instructions = {}
    if not args.no_asm:
        from benchmarks.vector_instructions import count, format_kinds, format_missed
        for name, dtype in (("kernel_f64", np.float64), ("kernel_f32", np.float32)):
            c = instructions[name] = count(dtype, tile=args.tile)
            total = c["vector"] + c["scalar"]
            per_cycle = (f"{total:.0f} / {cycles[name]:.0f} = {total / cycles[name]:.1f} per cycle" if cycles[name]
                         else "no clock")
            print(f"{name}: {c['vector']:.0f} vector ({c['register']}) and {c['scalar']:.0f} scalar instructions per "
                  f"network-epoch in the compiled loops over lanes (tile {c['tile']}; {c['uncounted']} loops not "
                  f"counted; benchmarks/vector_instructions.py), against {cycles[name] or float('nan'):.0f} cycles: "
                  f"{per_cycle}")
            print(f"  by kind: {format_kinds(c['kinds'])}")
            if c["missed"]:
                print(f"  {format_missed(c['missed'])}")
    print()
    vs_loop = rate["kernel_f64"] / rate["loop"]
    vs_batched = rate["kernel_f64"] / rate["batched"]
    pass_loop = vs_loop >= BAR_LOOP
    print(f"bar: kernel_f64 >= {BAR_LOOP:g}x loop:    {vs_loop:9.1f}x  {'PASS' if pass_loop else 'FAIL'}")
    print(f"kernel_f64 vs batched:          {vs_batched:9.2f}x  (against batched_threads: "
          f"{rate['kernel_f64'] / rate['batched_threads']:.2f}x; the {BAR_BATCHED:g}x bar of the kernels issue is "
          "retired: issue 15 made JAX the peer that decides)")
    if jax_cols:
        vs_jax64 = rate["kernel_f64"] / rate["jax_f64"]
        vs_jax32 = rate["kernel_f32"] / rate["jax_f32"]
        pass_jax64, pass_jax32 = vs_jax64 >= BAR_JAX_F64, vs_jax32 >= BAR_JAX_F32
        print(f"bar: kernel_f64 >= {BAR_JAX_F64:g}x jax_f64:    {vs_jax64:9.2f}x  {'PASS' if pass_jax64 else 'FAIL'}"
              "   (issue 15)")
        print(f"bar: kernel_f32 >= {BAR_JAX_F32:g}x jax_f32:    {vs_jax32:9.2f}x  {'PASS' if pass_jax32 else 'FAIL'}"
              "   (issue 15)")
    else:
        print(f"bar: kernels against JAX (issue 15): not measured ({jax_note})")
    print()

    out = {name: rate[name] for name in ("loop", "batched", "kernel_f64", "kernel_f32")}
    out.update({
        "kernel_f64_vs_loop": vs_loop,
        "kernel_f64_vs_batched": vs_batched,
        "kernel_f32_vs_loop": rate["kernel_f32"] / rate["loop"],
        "kernel_f32_vs_batched": rate["kernel_f32"] / rate["batched"],
        "batched_threads": rate["batched_threads"],
        "kernel_f64_vs_batched_threads": rate["kernel_f64"] / rate["batched_threads"],
        "loop_instructions_per_network_epoch": instructions,
        "pass_500x_loop": bool(pass_loop),
        "epochs": args.epochs,
        "networks": args.networks,
        "loop_networks": args.loop_networks,
        "threads": args.threads,
        "tile": args.tile,
        "repeats": args.repeats,
        "max_final_mse_diff": agree,
    })
    if startup is not None:
        out.update({k: startup[k] for k in ("startup_first_s", "startup_second_s", "startup_baseline_s")})
    if jax_cols:
        out.update({
            "jax_f64": rate["jax_f64"],
            "jax_f32": rate["jax_f32"],
            "kernel_f64_vs_jax_f64": vs_jax64,
            "kernel_f32_vs_jax_f32": vs_jax32,
            "pass_3x_jax_f64": bool(pass_jax64),
            "pass_5x_jax_f32": bool(pass_jax32),
            "jax_compile_s": extra["jax_compile_s"],
            "xla_flags": os.environ.get("XLA_FLAGS"),
        })
    out.update({
        "jax": jax_note,
        "cpu_per_wall": cpu_per_wall,
        "threads_used": threads_used,
        "cpu_mhz": mhz,
        "clock_source": clock_source,
        "cycles_per_network_epoch_per_core": cycles,
    })
    return out


if __name__ == "__main__":
    main()

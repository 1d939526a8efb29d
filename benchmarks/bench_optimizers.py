"""Throughput of the kernels' optimizers and online updates against the batched NumPy peer (issue 17).

    python benchmarks/bench_optimizers.py [--repeats 3] [--epochs-scale 1.0]
        [--threads N] [--workloads xor,gaussian]
        [--modes gd_full,adam_full,gd_online,adam_online]
        [--before auto|REF|none] [--json FILE]

Workloads (benchmarks/bench_kernels.py's `make_workload`, float64):

  xor       2-4-1 sigmoid/sigmoid on XOR (4 samples), MSE, reduction sum, lr 0.5,
            randn x 1 init, zero biases; 4096 networks x 2000 epochs;
  gaussian  16-16-1 tanh/identity, 272 N(0, 1) samples, MSE, reduction mean,
            lr 0.05, LeCun init, zero biases; 256 networks x 40 epochs.

Modes, each with the workload's lr:

  gd_full      full-batch gradient descent: the default, the notebooks' kernel;
  adam_full    Adam (beta1 0.9, beta2 0.999, eps 1e-8), one update per epoch;
  gd_online    gradient descent, batch_size 1: one update per sample, in dataset order;
  adam_online  Adam, batch_size 1.

An online epoch makes N updates (272 on gaussian), and the peer pays NumPy's
per-call overhead on each, so the online modes run fewer epochs where
`ONLINE_EPOCHS` says (gaussian: a quarter, 10 epochs); the table says so.
Rates are network-epochs per second either way.

Methods: the kernel (kernels.train, float64, checkpoints=0) on `--threads`
threads (default: all cores) and on 1 thread; the peer on one thread (the
script sets OPENBLAS_NUM_THREADS=1 unless it is set): for gd_full
benchmarks.peers.train_batched (the peer of bench_kernels.py), for the other
modes benchmarks.peers.train_batched_optimizer (the same model, Adam and
minibatches as kernels.reference). Each method is warmed up once on a small
case (compilation), then timed `--repeats` times, the methods taking turns;
medians are reported, with the ratios kernel/peer and each mode's rate over
the same method's gd_full rate. The final MSE of every network (from the
final weights, in float64, benchmarks.peers.batched_mse) is compared between
kernel and peer, relative to the peer's: they trained the same networks.

The default path (gd_full) against the kernels before issue 17's optimizers
(`--before`; auto: the parent of the commit that added kernels/optimizers.py;
none: skip): that commit's kernels/ is extracted with `git archive` into a
directory under the system's temporary directory (kept, with its Numba cache,
for the next run) and timed on the same gd_full workloads in a subprocess per
repeat (a warm-up call first), taking turns with the others; the final weights
must be bitwise the same as today's.

`--epochs-scale` scales every epoch count (a smoke test: 0.01). Output: the
CPU model, the table, and as the last line one JSON object (also written to
`--json FILE`).
"""
import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# The peer runs on one thread (as in bench_kernels.py); set before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_kernels import make_workload, max_rel_diff, subset  # noqa: E402
from benchmarks.peers import batched_mse, train_batched, train_batched_optimizer  # noqa: E402

WORKLOADS = ("xor", "gaussian")
MODES = {  # name: (optimizer, batch_size)
    "gd_full": ("gd", 0),
    "adam_full": ("adam", 0),
    "gd_online": ("gd", 1),
    "adam_online": ("adam", 1),
}
# The share of a workload's epochs the online modes run (the peer's online epoch on 272 samples is 272 updates).
ONLINE_EPOCHS = {"xor": 1.0, "gaussian": 0.25}


def cpu_model():
    """The CPU's model name (/proc/cpuinfo, else lscpu, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def mode_epochs(w, mode):
    """The epochs of a mode on workload w (fewer for the online modes where ONLINE_EPOCHS says)."""
    share = ONLINE_EPOCHS[w["name"]] if MODES[mode][1] else 1.0
    return max(1, int(round(w["epochs"] * share)))      # w["epochs"]: scaled by --epochs-scale already


def run_kernel(w, nets, epochs, mode, threads):
    from kernels import train
    optimizer, batch_size = MODES[mode]
    params = [np.array(p, dtype=np.float64, order="C", copy=True) for p in nets]   # trained in place
    t0 = time.perf_counter()
    train(w["X"], w["Y"], *params, epochs, lr=w["lr"], loss="mse", checkpoints=0, threads=threads,
          optimizer=optimizer, batch_size=batch_size, **w["family"])
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def run_peer(w, nets, epochs, mode):
    optimizer, batch_size = MODES[mode]
    params = [np.array(p, dtype=np.float64, copy=True) for p in nets]
    t0 = time.perf_counter()
    if mode == "gd_full":
        train_batched(w["X"], w["Y"], *params, w["lr"], epochs, **w["family"])
    else:
        train_batched_optimizer(w["X"], w["Y"], *params, w["lr"], epochs, optimizer=optimizer,
                                batch_size=batch_size, **w["family"])
    seconds = time.perf_counter() - t0
    return seconds, params[0].shape[-1] * epochs, params


def family_mse(w, params):
    return batched_mse(w["X"], w["Y"], *params, **{k: v for k, v in w["family"].items() if k != "reduction"})


# --------------------------------------------------------------------------
# The kernels before issue 17, in a subprocess.
# --------------------------------------------------------------------------

BEFORE_SCRIPT = r"""
import json, sys, time
import numpy as np
from kernels import train
spec = json.loads(sys.argv[1])
data = np.load(spec["data"])
out, finals = {}, {}
for name in spec["workloads"]:
    X, Y = data[name + "/X"], data[name + "/Y"]
    nets = [data[name + "/" + k] for k in ("W1", "b1", "W2", "b2")]
    family, lr, epochs = spec["family"][name], spec["lr"][name], spec["epochs"][name]
    for threads in spec["threads"]:
        def run(n, ep):
            ps = [np.array(p[..., :n], order="C", copy=True) for p in nets]
            t0 = time.perf_counter()
            train(X, Y, *ps, ep, lr=lr, loss="mse", checkpoints=0, threads=threads, **family)
            return time.perf_counter() - t0, ps
        run(16, 3)
        seconds, ps = run(nets[0].shape[-1], epochs)
        out[f"{name}/{threads}"] = nets[0].shape[-1] * epochs / seconds
        for k, p in zip(("W1", "b1", "W2", "b2"), ps):
            finals[f"{name}/{threads}/{k}"] = p
np.savez(spec["finals"], **finals)
print(json.dumps(out))
"""


def git(*args):
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def resolve_before(spec):
    """(commit hash, None) of --before, or (None, why it is skipped)."""
    if spec == "none":
        return None, "--before none"
    if spec == "auto":
        added = git("log", "--diff-filter=A", "--format=%H", "--", "kernels/optimizers.py")
        if added.returncode or not added.stdout.split():
            return None, "kernels/optimizers.py is in no commit (or no git): give --before REF"
        spec = added.stdout.split()[-1] + "^"
    rev = git("rev-parse", "--verify", "--quiet", spec + "^{commit}")
    if rev.returncode or not rev.stdout.strip():
        return None, f"no commit {spec!r} in {REPO_ROOT}"
    return rev.stdout.strip(), None


def extract_before(commit):
    """The directory holding `commit`'s kernels/ (extracted once; kept, with its Numba cache)."""
    root = Path(tempfile.gettempdir()) / f"sweep-bench-kernels-{commit[:12]}"
    if (root / "kernels" / "__init__.py").exists():
        return root
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    proc = subprocess.run(["git", "archive", "--format=tar", commit, "kernels"], cwd=REPO_ROOT,
                          capture_output=True, timeout=120, check=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    try:
        tmp.rename(root)
    except OSError:       # another run got there first
        pass
    return root


class Before:
    """The gd_full workloads on the kernels of another commit, one subprocess per call."""

    def __init__(self, commit, workloads, epochs, threads):
        self.commit, self.root = commit, extract_before(commit)
        self.work = Path(tempfile.mkdtemp(prefix="sweep-bench-before-"))
        data = {}
        for w in workloads:
            data[w["name"] + "/X"], data[w["name"] + "/Y"] = w["X"], w["Y"]
            for k, p in zip(("W1", "b1", "W2", "b2"), w["nets"]):
                data[f"{w['name']}/{k}"] = p
        np.savez(self.work / "data.npz", **data)
        self.spec = {"data": str(self.work / "data.npz"), "finals": str(self.work / "finals.npz"),
                     "workloads": [w["name"] for w in workloads], "threads": list(threads),
                     "family": {w["name"]: w["family"] for w in workloads},
                     "lr": {w["name"]: w["lr"] for w in workloads},
                     "epochs": {w["name"]: epochs[w["name"]] for w in workloads}}

    def run(self):
        """({"workload/threads": rate}, {"workload/threads": final params})."""
        env = dict(os.environ, PYTHONPATH=str(self.root), OPENBLAS_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", BEFORE_SCRIPT, json.dumps(self.spec)], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"the kernels of {self.commit[:12]} failed:\n{proc.stderr[-2000:]}")
        rates = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(self.spec["finals"]) as f:
            finals = {key: [f[f"{key}/{k}"] for k in ("W1", "b1", "W2", "b2")] for key in rates}
        return rates, finals

    def close(self):
        shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------
# Measurement and report.
# --------------------------------------------------------------------------

def measure(workloads, modes, args, before):
    thread_counts = list(dict.fromkeys([args.threads, 1]))
    methods = {}   # (workload, mode, method) -> run(nets, epochs)
    epochs = {}
    for w in workloads:
        for mode in modes:
            epochs[w["name"], mode] = mode_epochs(w, mode)
            for t in thread_counts:
                methods[w["name"], mode, f"kernel_{t}t"] = (
                    lambda n, ep, w=w, mode=mode, t=t: run_kernel(w, n, ep, mode, t))
            methods[w["name"], mode, "peer"] = lambda n, ep, w=w, mode=mode: run_peer(w, n, ep, mode)
    by_name = {w["name"]: w for w in workloads}
    for (name, mode, _), run in methods.items():      # warm-up: compilation (or the cache), allocator
        run(subset(by_name[name]["nets"], 16), 2)
    rates = {key: [] for key in methods}
    finals = {}
    before_rates, before_finals = {}, {}
    for _ in range(args.repeats):                      # the methods take turns, so drift hits all alike
        for key, run in methods.items():
            name, mode, _ = key
            seconds, net_epochs, final = run(by_name[name]["nets"], epochs[name, mode])
            rates[key].append(net_epochs / seconds)
            finals[key] = final
        if before is not None:
            r, before_finals = before.run()
            for k, v in r.items():
                before_rates.setdefault(k, []).append(v)
    return epochs, thread_counts, rates, finals, before_rates, before_finals


def report(workloads, modes, args, measured, before, before_note):
    epochs, thread_counts, rates, finals, before_rates, before_finals = measured
    kmain = f"kernel_{args.threads}t"
    rate = {key: statistics.median(r) for key, r in rates.items()}
    print(f"kernel optimizers and online updates against the batched NumPy peer (issue 17), float64; "
          f"median of {args.repeats}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"NumPy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print(f"kernel: kernels.train on {' and '.join(map(str, thread_counts))} thread(s), checkpoints=0; peer on 1 "
          "thread: gd_full benchmarks.peers.train_batched, the others train_batched_optimizer")
    for w in workloads:
        print(f"  {w['name']:<9}{w['desc']}; {w['networks']} networks")
        online = [m for m in modes if MODES[m][1]]
        if online and ONLINE_EPOCHS[w["name"]] != 1.0:
            full = mode_epochs(w, "gd_full")
            print(f"  {'':<9}online modes: {epochs[w['name'], online[0]]} epochs instead of {full} "
                  f"(x{ONLINE_EPOCHS[w['name']]:g}: an online epoch is {w['N']} updates; the peer is slow there)")
    print()
    cols = [f"kernel_{t}t" for t in thread_counts] + ["peer"]
    header = (f"{'workload':<10}{'mode':<13}{'nets x epochs':>15}" + "".join(f"{c + ' /s':>16}" for c in cols)
              + "".join(f"{c + '/peer':>16}" for c in cols[:-1])
              + f"{'kern/gd_full':>14}{'peer/gd_full':>14}{'MSE rel diff':>14}")
    print(header)
    print("-" * len(header))
    out = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads, "repeats": args.repeats,
           "epochs_scale": args.epochs_scale, "workloads": {}}
    for w in workloads:
        name = w["name"]
        res = {"desc": w["desc"], "networks": w["networks"], "modes": {}}
        for mode in modes:
            key = {c: (name, mode, c) for c in cols}
            mse_k = family_mse(w, finals[key[kmain]])
            mse_p = family_mse(w, finals[key["peer"]])
            diff = max_rel_diff(mse_k, mse_p)
            m = {c: rate[key[c]] for c in cols}
            m.update({f"{c}_vs_peer": rate[key[c]] / rate[key["peer"]] for c in cols[:-1]})
            if "gd_full" in modes:
                for c in cols:
                    m[f"{c}_vs_gd_full"] = rate[key[c]] / rate[name, "gd_full", c]
            m.update({"epochs": epochs[name, mode], "runs": {c: rates[key[c]] for c in cols},
                      "max_rel_final_mse_diff_kernel_vs_peer": diff,
                      "final_mse_median": float(np.median(mse_p)), "all_finite": bool(np.all(np.isfinite(mse_k)))})
            res["modes"][mode] = m
            rel = (f"{m[kmain + '_vs_gd_full']:>13.3f}x{m['peer_vs_gd_full']:>13.3f}x" if "gd_full" in modes
                   else f"{'':>28}")
            print(f"{name:<10}{mode:<13}{w['networks']:>7} x {epochs[name, mode]:<5}"
                  + "".join(f"{m[c]:>16,.0f}" for c in cols)
                  + "".join(f"{m[c + '_vs_peer']:>15.2f}x" for c in cols[:-1]) + rel + f"{diff:>14.1e}")
        if before is not None and "gd_full" in modes:
            b = {}
            for t in thread_counts:
                runs = before_rates[f"{name}/{t}"]
                now = rate[name, "gd_full", f"kernel_{t}t"]
                same = all(np.array_equal(p, q) for p, q in
                           zip(before_finals[f"{name}/{t}"], finals[name, "gd_full", f"kernel_{t}t"]))
                b[f"kernel_{t}t"] = {"rate": statistics.median(runs), "runs": runs,
                                     "now_vs_before": now / statistics.median(runs), "bitwise_same": bool(same)}
            res["gd_full_before"] = {"commit": before.commit, **b}
            print(f"{'':<10}{'gd_full@' + before.commit[:7]:<28}"
                  + "".join(f"{b[c]['rate']:>16,.0f}" for c in cols[:-1])
                  + f"{'':>16}   before issue 17's optimizers; now/before "
                  + ", ".join(f"{c} {b[c]['now_vs_before']:.3f}x" for c in cols[:-1])
                  + "; final weights bitwise the same: " + ", ".join(str(b[c]["bitwise_same"]) for c in cols[:-1]))
        out["workloads"][name] = res
    print()
    print("columns: network-epochs/s; X/peer: the kernel's rate over the peer's; kern/gd_full, peer/gd_full: the "
          f"mode's rate over the same method's gd_full rate ({kmain} for the kernel); MSE rel diff: max over "
          f"networks of |final MSE {kmain} - peer| / peer")
    if before is None:
        print(f"gd_full before issue 17's optimizers: not measured ({before_note})")
    out["before"] = before.commit if before is not None else None
    out["before_note"] = before_note
    out["online_epochs"] = ONLINE_EPOCHS
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="scale every epoch count (0.01: a smoke test)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the kernel (and 1)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"some of {', '.join(WORKLOADS)}")
    ap.add_argument("--modes", default=",".join(MODES), help=f"some of {', '.join(MODES)}")
    ap.add_argument("--before", default="auto",
                    help="gd_full on the kernels of this commit too (auto: the parent of the commit that added "
                         "kernels/optimizers.py; none: skip)")
    ap.add_argument("--json", metavar="FILE", help="also write the JSON figures to FILE")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or not args.epochs_scale > 0:
        ap.error("--repeats and --threads must be >= 1 and --epochs-scale > 0")
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not names or any(n not in WORKLOADS for n in names):
        ap.error(f"--workloads: some of {', '.join(WORKLOADS)}")
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes: some of {', '.join(MODES)}")
    workloads = [make_workload(n, args.epochs_scale) for n in names]

    before, before_note = None, None
    if "gd_full" in modes:
        commit, before_note = resolve_before(args.before)
        if commit is not None:
            try:
                before = Before(commit, workloads, {w["name"]: w["epochs"] for w in workloads},
                                list(dict.fromkeys([args.threads, 1])))
            except (OSError, subprocess.SubprocessError) as exc:
                before_note = f"could not extract the kernels of {commit[:12]}: {exc}"
    else:
        before_note = "gd_full not among --modes"
    try:
        measured = measure(workloads, modes, args, before)
    finally:
        if before is not None:
            before.close()
    out = report(workloads, modes, args, measured, before, before_note)
    text = json.dumps(out)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return out


if __name__ == "__main__":
    main()

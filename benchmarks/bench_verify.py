"""What checking a sweep's results costs: status (footers), status --verify and a resume (every page and
run id), and sweep.load, on a sweep of --runs runs (default 1,000,000 of 50 epochs, checkpoints 0).

    python benchmarks/bench_verify.py [--runs N] [--repeat 3] [--keep DIR]

Prints the median of --repeat timings of each, per run and against reading the same parts with no checks
(pyarrow.parquet.read_table of every part), measured in the same run.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = """
name = "verify"
epochs = 50
checkpoints = 0
chunk_size = 2048
[grid]
lr = [0.5, 1.0]
init_scale = [0.5, 2.0]
seed = {{ range = [0, {seeds}] }}
"""


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sweep_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", default=None, help="results root to reuse (the sweep is trained once)")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    import sweep
    from sweep import store

    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_verify-"))
    root.mkdir(parents=True, exist_ok=True)
    grid = root / "grid.toml"
    grid.write_text(GRID.format(seeds=max(1, args.runs // 4)))
    out = root / "verify"
    if not (out / store.MANIFEST).exists():
        print(f"training {args.runs:,} runs into {out} ...", flush=True)
        sweep_cli("run", str(grid), "--out", str(root), "--quiet")
    parts = sorted(store.list_parts(out).values())
    runs = len(sweep.load(out, columns=["run_id"]))
    size = sum(p.stat().st_size for p in parts)
    print(f"{runs:,} runs in {len(parts)} parts, {size / 1e6:.0f} MB; medians of {args.repeat}")

    plain = timed(lambda: [pq.read_table(p) for p in parts], args.repeat)
    rows = [
        ("read every part, no checks (pyarrow)", plain),
        ("sweep status (footers: stamp, rows, schema)", timed(lambda: sweep_cli("status", str(out)), args.repeat)),
        ("sweep status --verify (every page, run ids)",
         timed(lambda: sweep_cli("status", str(out), "--verify"), args.repeat)),
        ("sweep run, all written (resume: verify all)",
         timed(lambda: sweep_cli("run", str(grid), "--out", str(root), "--quiet"), args.repeat)),
        ("sweep.load (in process)", timed(lambda: sweep.load(out), args.repeat)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:7.2f} s  {1e6 * seconds / runs:6.2f} us/run  "
              f"{seconds / plain:5.1f}x plain read")


if __name__ == "__main__":
    main()

"""Instructions per network-epoch in the compiled loops over lanes of the notebooks' kernel, from its assembly.

    python benchmarks/vector_instructions.py [--dtype float64|float32] [--loops]

Where the time goes, seen from the machine code: the kernel is compiled again, as Numba compiles it for this
machine (same options, same CPU features), with line numbers (`debug=True`; LLVM's optimisations do not look
at debug information; its count of instructions is printed beside that of the kernel compiled without them,
for comparison).
Every innermost loop of its assembly whose counter runs over lanes is attributed to its lines of
kernels/kernel.py; how often each line runs per network-epoch is counted by running the kernel's Python
source (`py_func`, its helpers' too) under a line tracer on the same workload, over two lengths of training,
so that the difference is the steady state of an epoch. A loop that advances by `lanes` lanes per
iteration and whose line runs `count` times per epoch in a tile of `tile` lanes runs `count / (lanes * tile)`
iterations per network-epoch, each of `len(body)` instructions. The same weights give the instructions by
kind, by the execution units each needs (multiplies and FMAs, additions, divisions, loads, stores, ...): what
the loops ask of the machine's ports.

The workload is the kernel benchmark's: 2-4-1 sigmoid networks on XOR, MSE, lr 0.5, one tile of the
default size (a multiple of every loop's lanes per iteration, so no loop runs its remainder). What is not
counted: the code between the loops (per hidden unit and per sample: loads of x, branches, loop set-up),
a few instructions per loop entry; the counts are of the loop bodies only. A vector loop whose counter is
not recognised is reported, not counted. A loop the compiler left scalar with branches inside is no innermost
loop of the assembly: a loop over lanes whose `for` line runs every epoch but lies in no innermost loop is
reported by its line (`missed`), not counted. (The per-state scoring loop was such a loop for a Zen 3 until it
was written branch-free: docs/performance.md.)
"""
import argparse
import collections
import inspect
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)
KERNEL_FILE = str(REPO_ROOT / "kernels" / "kernel.py")
PACKED = re.compile(r"%[xyz]mm\d+")


@contextmanager
def _helpers(replace, loops_only=False):
    """kernels.kernel's own Numba functions replaced, for the duration, by replace(dispatcher); with
    `loops_only`, only those with loops (the others are left as compiled, so that they inline as in the
    kernel: compiled again with debug information, a small one such as `_times` was called, not inlined)."""
    import kernels.kernel as module
    from numba.core.registry import CPUDispatcher

    saved = {name: f for name, f in vars(module).items()
             if isinstance(f, CPUDispatcher) and f.py_func.__module__ == module.__name__
             and (not loops_only or "for " in inspect.getsource(f.py_func))}
    try:
        for name, f in saved.items():
            setattr(module, name, replace(f))
        yield
    finally:
        for name, f in saved.items():
            setattr(module, name, f)


def kernel_call(dtype, epochs, tile):
    """The notebooks' kernel of the XOR workload and the arguments `kernels.train` calls it with."""
    import kernels.kernel as module
    from kernels import train

    rng = np.random.default_rng(0)
    params = [rng.standard_normal((2, 4, tile)), np.zeros((4, tile)), rng.standard_normal((4, tile)), np.zeros(tile)]
    params = [p.astype(dtype) for p in params]
    seen = {}
    real = module.train_range_for

    def recording(*key):
        kernel = real(*key)

        def call(*args):
            seen.update(kernel=kernel, args=args)
            return kernel(*args)
        return call

    module.train_range_for = recording
    try:
        train(X.astype(dtype), Y.astype(dtype), *params, epochs, lr=0.5, loss="mse", checkpoints=0, threads=1,
              tile=tile)
    finally:
        module.train_range_for = real
    return seen["kernel"], seen["args"]


def line_counts(dtype, tile, short=2, long=5):
    """Per line of kernels/kernel.py, how many times it runs per epoch of a tile (steady state)."""
    counts = {}
    for epochs in (short, long):
        kernel, args = kernel_call(dtype, epochs, tile)
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        seen = collections.Counter()

        def tracer(frame, event, arg):
            if frame.f_code.co_filename != KERNEL_FILE:
                return None

            def local(frame, event, arg):
                if event == "line":
                    seen[frame.f_lineno] += 1
                return local
            return local

        with _helpers(lambda f: f.py_func):
            sys.settrace(tracer)
            try:
                kernel.py_func(*args)
            finally:
                sys.settrace(None)
        counts[epochs] = seen
    lines = set(counts[short]) | set(counts[long])
    return {line: (counts[long][line] - counts[short][line]) / (long - short) for line in lines}


def assembly(dtype, tile):
    """The kernel's assembly with line numbers (compiled again with debug information), and the count of
    instructions of the same kernel compiled again without them (as the cache holds it), for comparison."""
    from numba import njit, typeof

    from kernels.jit import KERNEL_JIT

    options = {k: v for k, v in KERNEL_JIT.items() if k != "cache"}
    debug = dict(options, debug=True, boundscheck=False, _dbg_extend_lifetimes=False)
    kernel, args = kernel_call(dtype, 1, tile)
    signature = tuple(typeof(a) for a in args)
    with _helpers(lambda f: njit(**debug)(f.py_func), loops_only=True):
        twin = njit(signature, **debug)(kernel.py_func)
    with _helpers(lambda f: njit(**options)(f.py_func), loops_only=True):
        plain = njit(signature, **options)(kernel.py_func)
    return twin.inspect_asm(signature), _instructions(plain.inspect_asm(signature))


def _instructions(asm):
    return sum(1 for line in asm.splitlines() if line.startswith("\t") and not line.startswith("\t."))


Loop = collections.namedtuple("Loop", "body lines lanes vector width fma kinds text")

FOLDED = "loads folded into arithmetic"  # counted beside the kinds, not as instructions of their own


def _kind(instruction):
    """What an instruction of a loop body does, by the execution units it needs: "multiply/FMA", "add",
    "divide", "min/max/logic/shift", "load", "store", "move" (register to register, vector), "other vector", or
    "scalar" (no vector register: counters, branches, addresses)."""
    op, _, operands = instruction.partition("\t")
    if not PACKED.search(operands):
        return "scalar"
    destination = re.split(r",\s*(?![^()]*\))", operands)[-1]  # AT&T: the last operand, commas in (...) kept
    if op.startswith(("vfmadd", "vfmsub", "vfnmadd", "vfnmsub", "vmul")):
        return "multiply/FMA"
    if op.startswith(("vdiv", "vsqrt")):
        return "divide"
    if op.startswith(("vadd", "vsub")):
        return "add"
    if op.startswith(("vmin", "vmax", "vcmp", "vand", "vor", "vxor", "vblend", "vpsll", "vpsrl", "vpsra", "vpand",
                      "vpor", "vpxor", "vpadd", "vpsub")):
        return "min/max/logic/shift"
    if op.startswith(("vmov", "vmaskmov", "vbroadcast")):
        if "(" in destination:
            return "store"
        return "load" if "(" in operands else "move"
    return "other vector"


def _kinds(body):
    """The kinds of a loop body's instructions, and how many of its arithmetic instructions read memory."""
    kinds = collections.Counter(_kind(t) for t in body)
    kinds[FOLDED] = sum(1 for t in body if "(" in t and _kind(t) not in ("load", "store", "scalar"))
    return kinds


def loops(asm, itemsize):
    """The innermost loops of the assembly: their instructions, their lines of kernels/kernel.py, the lanes
    per iteration (None where the counter was not recognised) and whether they use vector registers."""
    files, items, labels, loc = {}, [], {}, (0, 0)
    for raw in asm.splitlines():
        if raw.startswith("\t.file"):
            m = re.match(r'\t\.file\t(\d+) "([^"]*)" "([^"]*)"', raw)
            if m:
                files[int(m.group(1))] = str(Path(m.group(2)) / m.group(3))
        elif raw.startswith("\t.loc"):
            parts = raw.split()
            loc = (int(parts[1]), int(parts[2]))
        elif re.match(r"^\.?L\w+:", raw):
            labels[raw.split(":")[0]] = len(items)
        elif raw.startswith("\t") and not raw.startswith("\t."):
            items.append((raw.strip(), loc))
    kernel_file = {n for n, f in files.items() if Path(f).resolve() == Path(KERNEL_FILE).resolve()}
    spans = []
    for i, (text, _) in enumerate(items):
        m = re.match(r"^j\w+\s+(\.?L\w+)$", text)
        if m and labels.get(m.group(1), i + 1) <= i:
            spans.append((labels[m.group(1)], i))
    inner = [(a, b) for a, b in spans if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in spans)]
    found = []
    for a, b in inner:
        body = items[a:b + 1]
        lanes = _lanes_per_iteration([t for t, _ in body], itemsize)
        lines = collections.Counter(line for _, (f, line) in body if f in kernel_file and line > 0)
        widths = {m[1] for t, _ in body for m in PACKED.findall(t)}
        width = next((w + "mm" for w in "zyx" if w in widths), None)
        fma = sum(t.startswith("vfmadd") for t, _ in body)
        text = tuple(t for t, _ in body)
        found.append(Loop(len(body), lines, lanes, width in ("ymm", "zmm"), width, fma, _kinds(text), text))
    return found


def _lanes_per_iteration(body, itemsize):
    """From the loop's counter: `add $k, %r` then `cmp` on %r before the back jump; k counts elements where
    %r indexes memory scaled by the item size, bytes where it indexes unscaled. Where the compared value was
    spilled to the stack, the counter is the register added to that indexes memory scaled by the item size.
    None if there is no such counter."""
    if len(body) < 3 or not body[-2].startswith("cmp"):
        return None
    operands = " ".join(body)
    compared = re.findall(r"%(r\w+)", body[-2])
    adds = [(int(m.group(1)), m.group(2)) for m in (re.match(r"^add[ql]\s+\$(\d+), %(r\w+)$", t) for t in body[:-2])
            if m]
    for k, reg in adds:
        if reg in compared:
            if re.search(rf",%{reg},{itemsize}\)", operands):
                return k
            if re.search(rf"\(%r\w+,%{reg}\)", operands):
                return max(1, k // itemsize)
            return k
    for k, reg in adds:
        if re.search(rf",%{reg},{itemsize}\)", operands):
            return k
    return None


def mca(body, cpu, iterations=200):
    """(cycles per iteration, the block's reciprocal throughput) of a loop body on `cpu`'s scheduling model in
    LLVM, from `llvm-mca`: the first simulates the out-of-order core (dependencies, queues, ports), the second
    is what the ports alone allow."""
    import subprocess

    import llvmlite.binding as llvm

    source = ".Lloop:\n" + "\n".join(re.sub(r"^(j\w+)\s+\.?L\w+$", r"\1 .Lloop", t) for t in body) + "\n"
    out = subprocess.run(["llvm-mca", f"-mtriple={llvm.get_process_triple()}", f"-mcpu={cpu}",
                          f"-iterations={iterations}"], input=source, capture_output=True, text=True, check=True).stdout
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / iterations
    return cycles, float(re.search(r"Block RThroughput:\s+([\d.]+)", out).group(1))


def count(dtype=np.float64, tile=None, verbose=False, mca_cpus=()):
    """Instructions per network-epoch in the loops over lanes, split into vector and scalar loops; with
    `mca_cpus`, also llvm-mca's cycles per network-epoch of the same loops on those CPUs' models (`mca`)."""
    from kernels.batch import default_tile

    dtype = np.dtype(dtype)
    tile = tile or default_tile(dtype, *X.shape, 4)
    per_line = line_counts(dtype, tile)
    asm, plain = assembly(dtype, tile)
    source = Path(KERNEL_FILE).read_text().splitlines()
    totals = collections.Counter()
    registers = collections.Counter()
    kinds = collections.Counter()
    modelled = {cpu: collections.Counter() for cpu in mca_cpus}
    rows = []
    # LLVM compiles a loop as versions: the vector body, a shorter vector epilogue, a scalar remainder (often
    # unrolled: more lanes per iteration than the vector body), and an inlined helper's loops once per call
    # site. With a tile a multiple of its lanes per iteration only the widest vector version runs.
    widest, unread, seen = {}, set(), set()
    for loop in loops(asm, dtype.itemsize):
        key = frozenset(loop.lines)
        seen |= key
        if loop.lanes is None:
            if loop.vector:
                unread.add(key)
        elif loop.lines and (key not in widest
                             or (loop.vector, loop.lanes) > (widest[key].vector, widest[key].lanes)):
            widest[key] = loop
    # Vector loops that run every epoch but whose counter was not recognised are not counted, only reported.
    unread = {key for key in unread - set(widest) if key and max(per_line.get(line, 0.0) for line in key) > 0}
    # Loops over lanes (a `for` line run once per lane or more each epoch) that are in no innermost loop of the
    # assembly at all: a loop LLVM left scalar with branches inside, code this count cannot see.
    missed = sorted(line for line, n in per_line.items()
                    if n >= tile / 2 and source[line - 1].lstrip().startswith("for ") and line not in seen)
    for loop in widest.values():
        # How often the body runs: its `for` line runs once per lane and once more per entry (a multi-line
        # statement of the body is traced once per line and more, a conditional one less).
        headers = [line for line in loop.lines if source[line - 1].lstrip().startswith("for ")]
        if headers:
            runs = max(per_line.get(line, 0.0) for line in headers) * tile / (tile + 1)
        else:
            runs = float(np.median([per_line.get(line, 0.0) for line in loop.lines]))
        if runs == 0:
            continue
        if tile % loop.lanes:
            raise RuntimeError(f"tile {tile} is not a multiple of the {loop.lanes} lanes of the loop of lines "
                               f"{sorted(loop.lines)}: its remainder would run too")
        per_network_epoch = loop.body * runs / (loop.lanes * tile)
        kind = "vector" if loop.vector else "scalar"
        totals[kind] += per_network_epoch
        registers[loop.width] += per_network_epoch
        for name, n in loop.kinds.items():
            kinds[name] += n * runs / (loop.lanes * tile)
        for cpu in mca_cpus:
            cycles, ports = mca(loop.text, cpu)
            modelled[cpu]["simulated"] += cycles * runs / (loop.lanes * tile)
            modelled[cpu]["ports"] += ports * runs / (loop.lanes * tile)
        rows.append(dict(first=min(loop.lines), last=max(loop.lines), kind=kind, body=loop.body, fma=loop.fma,
                         lanes=loop.lanes, runs=runs / tile, per_network_epoch=per_network_epoch))
    rows.sort(key=lambda r: (r["first"], r["last"]))
    if verbose:
        print(f"{'lines':>9}  {'kind':6}  {'body':>4}  {'fma':>3}  {'lanes/it':>8}  {'runs/lane-epoch':>15}  "
              f"{'instr/net-epoch':>15}")
        for r in rows:
            print(f"{r['first']:>4}-{r['last']:<4}  {r['kind']:6}  {r['body']:>4}  {r['fma']:>3}  {r['lanes']:>8}  "
                  f"{r['runs']:>15.3g}  {r['per_network_epoch']:>15.2f}")
    return dict(dtype=dtype.name, tile=tile, vector=totals["vector"], scalar=totals["scalar"],
                register=max(registers, key=registers.get) if registers else None,
                loops=len(rows), uncounted=len(unread), missed=missed, rows=rows, kinds=dict(kinds),
                mca={cpu: dict(m) for cpu, m in modelled.items()},
                twin_instructions=_instructions(asm),
                kernel_instructions=plain)


def format_missed(lines):
    """`count`'s loops over lanes that it cannot see, as one line."""
    many = len(lines) > 1
    return (f"NOT COUNTED: the loop{'s' if many else ''} over lanes at kernels/kernel.py line{'s' if many else ''} "
            f"{', '.join(map(str, lines))} {'are' if many else 'is'} in no innermost loop of the assembly (left "
            f"scalar, with branches inside?)")


def format_kinds(kinds):
    """`count`'s instructions per network-epoch by kind, largest first, as one line."""
    ranked = sorted(((k, v) for k, v in kinds.items() if k != FOLDED), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1f}" for k, v in ranked) + f" ({FOLDED}: {kinds.get(FOLDED, 0.0):.1f})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("float64", "float32"), default=None, help="one dtype (default: both)")
    ap.add_argument("--loops", action="store_true", help="print each loop's figures")
    ap.add_argument("--mca", metavar="CPU[,CPU]", default="",
                    help="also llvm-mca's cycles per network-epoch of the loops on these CPUs' models (znver3, "
                         "icelake-server, ...; needs llvm-mca on the PATH)")
    args = ap.parse_args(argv)
    cpus = tuple(c for c in args.mca.split(",") if c)
    for dtype in ([args.dtype] if args.dtype else ["float64", "float32"]):
        c = count(dtype, verbose=args.loops, mca_cpus=cpus)
        print(f"{dtype}: {c['vector']:.0f} instructions per network-epoch in vector loops ({c['register']}) and "
              f"{c['scalar']:.0f} in scalar ones ({c['loops']} loops over lanes, tile {c['tile']}; "
              f"{c['uncounted']} more loops of the epoch not counted: their counter was not recognised); "
              f"the kernel has {c['kernel_instructions']} instructions, its twin with line numbers "
              f"{c['twin_instructions']}")
        if c["missed"]:
            print(f"  {format_missed(c['missed'])}")
        print("  by kind: " + format_kinds(c["kinds"]))
        for cpu, m in c["mca"].items():
            print(f"  llvm-mca, {cpu}: {m['simulated']:.1f} cycles per network-epoch simulated, {m['ports']:.1f} "
                  f"as its ports allow")


if __name__ == "__main__":
    main()

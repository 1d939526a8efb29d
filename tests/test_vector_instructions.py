"""benchmarks/vector_instructions.py: loops and their lanes read from assembly, and the count of the kernel's
loops per network-epoch against what the XOR network computes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import vector_instructions as vi

ASM = """\t.file\t1 "{dir}" "kernel.py"
.LBB0_7:
\t.loc\t1 654 20
\tvmulpd\t(%r12,%rax,8), %zmm3, %zmm5
\tvmovupd\t%zmm5, (%r14,%rax,8)
\t.loc\t1 653 0
\taddq\t$8, %rax
\tcmpq\t%rax, %r15
\tjne\t.LBB0_7
.LBB0_9:
\t.loc\t1 700 3
\tvmovupd\t%ymm0, (%rcx,%rsi)
\tvmovupd\t%ymm0, 32(%rcx,%rsi)
\taddq\t$64, %rsi
\tcmpq\t%rsi, %r14
\tjne\t.LBB0_9
.LBB0_11:
\t.loc\t1 710 3
\tmovq\t(%rdx,%rbx,8), %rdi
\taddq\t$1, %rbx
\tcmpq\t%rbx, %r9
\tjb\t.LBB0_11
\tjmp\t.LBB0_7
"""


def test_loops_are_the_innermost_back_jumps_with_their_lines_lanes_and_registers():
    from pathlib import Path
    asm = ASM.format(dir=str(Path(vi.KERNEL_FILE).parent))
    found = vi.loops(asm, 8)
    assert [(l.body, dict(l.lines), l.lanes, l.vector, l.width) for l in found] == [
        (5, {654: 2, 653: 3}, 8, True, "zmm"),     # elements: %rax indexes scaled by 8
        (5, {700: 5}, 8, True, "ymm"),              # bytes: 64 / 8 lanes, two 4-lane vectors
        (4, {710: 4}, 1, False, None),              # a scalar loop
    ]  # the last jump goes back over all three: not innermost
    assert all(len(l.text) == l.body and l.text[-1].startswith("j") for l in found)


@pytest.mark.skipif(shutil.which("llvm-mca") is None, reason="llvm-mca is not on the PATH")
def test_mca_simulates_a_chain_of_dependent_fmas_slower_than_independent_ones():
    """Four fused multiply-adds into one register (a chain across iterations too) take about four latencies
    an iteration; four into four registers, about what the ports allow. The model's figures reach us."""
    chain = ["vfmadd213pd\t%ymm1, %ymm2, %ymm0"] * 4 + ["decq\t%rcx", "jne\t.LBB0_3"]
    free = [f"vfmadd213pd\t%ymm1, %ymm2, %ymm{r}" for r in (3, 4, 5, 6)] + ["decq\t%rcx", "jne\t.LBB0_3"]
    (chained, chain_ports), (independent, free_ports) = vi.mca(chain, "znver3"), vi.mca(free, "znver3")
    assert chain_ports == free_ports > 0  # the same instructions on the same ports
    assert independent == pytest.approx(free_ports, rel=0.25)
    assert chained > 3 * independent


def test_lanes_per_iteration_reads_the_counter_or_refuses():
    assert vi._lanes_per_iteration(["vaddps\t(%rdi,%rcx,4), %zmm1, %zmm1", "addq\t$64, %rcx", "cmpq\t%rcx, %rax",
                                    "jne\t.L1"], 4) == 64
    # the compared value spilled: the counter is the register that indexes memory scaled by the item size
    assert vi._lanes_per_iteration(["vmovupd\t(%rdi,%rcx,8), %zmm1", "addq\t$16, %rcx", "movq\t440(%rsp), %rdx",
                                    "cmpq\t968(%rsp), %rdx", "jb\t.L1"], 8) == 16
    assert vi._lanes_per_iteration(["vmovupd\t(%rdi), %zmm1", "jne\t.L1"], 8) is None


@pytest.mark.slow
def test_the_kernels_loops_take_the_sigmoids_of_xor_once_each(dtype=np.float64):
    """XOR 2-4-1 takes 20 sigmoids per network-epoch (4 samples x (4 hidden + 1 output)): the loops whose body
    holds an exp (its polynomial: 7 to 11 fused multiply-adds and more) must run 20 times per lane-epoch in
    all; every vector loop advances by whole vectors. (float64 only: each dtype compiles the kernel twice.)"""
    c = vi.count(dtype)
    lanes_per_vector = {"zmm": 64, "ymm": 32, "xmm": 16}[c["register"]] // np.dtype(dtype).itemsize
    sigmoids = sum(r["runs"] for r in c["rows"] if r["fma"] >= 7)
    assert sigmoids == pytest.approx(20)
    assert all(r["lanes"] % lanes_per_vector == 0 for r in c["rows"] if r["kind"] == "vector")
    assert c["vector"] > 0 and abs(c["twin_instructions"] - c["kernel_instructions"]) < 0.05 * c["kernel_instructions"]
    assert c["missed"] == []  # every loop over lanes is in the count
    # the kinds share out the same instructions; each sigmoid divides once per vector
    assert sum(v for k, v in c["kinds"].items() if k != vi.FOLDED) == pytest.approx(c["vector"] + c["scalar"])
    assert c["kinds"]["divide"] >= 20 / lanes_per_vector - 1e-9


_EPOCH_LOOP = """
import json, numpy as np
from benchmarks import vector_instructions as vi
c = vi.count(np.float32)
print(json.dumps(dict(register=c["register"], rows=c["rows"], missed=c["missed"])))
"""


@pytest.mark.slow
def test_the_epochs_statistics_are_a_vector_loop_without_avx512(tmp_path):
    """The loop over lanes that scores each state (loss, criterion, minimum, trainability sums, stop) is written
    branch-free so that it vectorises on AVX2 machines too. With branches, LLVM vectorised it only where masked
    stores are cheap (AVX-512, Intel's AVX2); for a Zen 3 it stayed scalar (docs/performance.md). Compiled for a Zen 3 (LLVM's model of it) with this host's features less AVX-512, it
    is a vector loop run once per lane-epoch, and no loop over lanes is left out of the count (`missed`: with
    branches, this one was)."""
    from numba.core import codegen

    features = codegen.get_host_cpu_features().split(",")
    if not {"+avx2", "+fma"} <= set(features):
        pytest.skip("this CPU has no AVX2 and FMA")
    avx2 = ",".join("-" + f[1:] if f[1:].startswith(("avx512", "amx", "evex512", "avx10")) else f for f in features)
    root = Path(vi.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", _EPOCH_LOOP], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_CPU_NAME": "znver3",
                              "NUMBA_CPU_FEATURES": avx2})
    counted = json.loads(out.stdout.splitlines()[-1])
    assert counted["register"] == "ymm" and counted["missed"] == []
    source = Path(vi.KERNEL_FILE).read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(source) if "= stops(finite, ok, t_early[j], e, epochs)" in text)
    loop = [r for r in counted["rows"] if r["first"] <= line <= r["last"]]
    assert len(loop) == 1 and loop[0]["kind"] == "vector", loop
    assert loop[0]["runs"] == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("instruction, kind", [
    ("vmovups\t%ymm5, (%r15,%rax,4)", "store"),            # the last operand is the destination, commas in ()
    ("vmaskmovps\t%ymm6, %ymm7, (%r9,%rax,4)", "store"),
    ("vmovsd\t%xmm0, (%rax)", "store"),
    ("vmovups\t(%rsi,%rax,4), %ymm4", "load"),
    ("vbroadcastss\t(%r10), %ymm6", "load"),
    ("vmovaps\t%ymm2, %ymm5", "move"),
    ("vfmadd213ps\t1936(%rsp), %ymm5, %ymm7", "multiply/FMA"),
    ("vmulpd\t%zmm1, %zmm2, %zmm3", "multiply/FMA"),
    ("vdivps\t%ymm5, %ymm0, %ymm5", "divide"),
    ("vsubps\t528(%rsp), %ymm4, %ymm5", "add"),
    ("vpslld\t$23, %ymm6, %ymm6", "min/max/logic/shift"),
    ("vminps\t%ymm5, %ymm2, %ymm5", "min/max/logic/shift"),
    ("vcvtps2pd\t%xmm0, %ymm1", "other vector"),
    ("addq\t$8, %rax", "scalar"),
    ("jne\t.LBB0_217", "scalar"),
])
def test_instructions_are_sorted_by_the_units_they_need(instruction, kind):
    assert vi._kind(instruction) == kind


def test_arithmetic_that_reads_memory_is_counted_beside_the_kinds():
    kinds = vi._kinds(["vfmadd213ps\t1936(%rsp), %ymm5, %ymm7", "vmovups\t%ymm5, (%r15,%rax,4)",
                       "vaddps\t(%rcx,%rax,4), %ymm4, %ymm4", "vmovups\t(%rsi,%rax,4), %ymm4"])
    assert kinds == {"multiply/FMA": 1, "store": 1, "add": 1, "load": 1, vi.FOLDED: 2}

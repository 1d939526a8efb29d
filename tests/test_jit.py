"""kernels/jit.py: the Numba cache of the kernels is keyed on all their source files, so a change to a function
in one file recompiles its callers in the others (Numba alone would keep their stale machine code)."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernels import jit

ROOT = Path(__file__).resolve().parent.parent


def test_the_stamped_locators_come_first_and_cover_the_kernels():
    from numba.core import caching

    from kernels.rules import is_finite

    names = [c.__name__ for c in caching.CacheImpl._locator_classes]
    assert names[:3] == ["StampedUserProvidedCacheLocator", "StampedInTreeCacheLocator",
                         "StampedUserWideCacheLocator"]
    is_finite(1.0)
    locator = is_finite._cache._impl.locator
    assert type(locator).__name__.startswith("Stamped") and locator.get_source_stamp() == jit.source_stamp()
    assert {str(ROOT / "kernels" / "kernel.py"), str(ROOT / "sweep" / "grid" / "hashing.py")} <= jit.WATCHED


def test_a_changed_callee_in_another_file_recompiles_its_cached_caller(tmp_path):
    """A copy of the kernels package with a caller and a callee in two files, run twice in fresh processes
    with the callee edited in between: the second run computes with the new callee."""
    shutil.copytree(ROOT / "kernels", tmp_path / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "kernels" / "t_callee.py").write_text(textwrap.dedent("""
        from numba import njit
        from kernels.jit import JIT

        @njit(**JIT)
        def f(x):
            return x + 1
    """))
    (tmp_path / "kernels" / "t_caller.py").write_text(textwrap.dedent("""
        from numba import njit
        from kernels.jit import JIT
        from kernels.t_callee import f

        @njit(**JIT)
        def g(x):
            return f(x) * 2
    """))

    def run():
        out = subprocess.run([sys.executable, "-c", "from kernels.t_caller import g; print(g(1))"], cwd=tmp_path,
                             capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "NUMBA_CACHE_DIR": "",
                                  "PYTHONDONTWRITEBYTECODE": "1"},
                             check=True)
        return out.stdout.strip()

    assert run() == "4"
    assert any(p.suffix == ".nbi" for p in (tmp_path / "kernels" / "__pycache__").iterdir())  # cached in the tree
    callee = tmp_path / "kernels" / "t_callee.py"
    # Python's own bytecode cache (off above) would keep the old callee: same size, same second of mtime.
    callee.write_text(callee.read_text().replace("x + 1", "x + 2"))
    assert run() == "6"


def test_wide_vectors_turn_off_the_256_bit_preference_only_on_avx512_and_only_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(jit.config, "CPU_NAME", None)
    monkeypatch.setattr(jit.config, "CPU_FEATURES", None)
    monkeypatch.setattr(jit.codegen, "get_host_cpu_features", lambda: "+avx2,+avx512f,+fma")
    assert jit.wide_vectors() == "+avx2,+avx512f,+fma,-prefer-256-bit"
    monkeypatch.setattr(jit.codegen, "get_host_cpu_features", lambda: "+avx2,-avx512f,+fma")
    assert jit.wide_vectors() is None
    monkeypatch.setattr(jit.codegen, "get_host_cpu_features", lambda: "+avx2,+avx512f,+fma")
    monkeypatch.setattr(jit.config, "CPU_FEATURES", "+avx2")
    assert jit.wide_vectors() is None
    monkeypatch.setattr(jit.config, "CPU_FEATURES", None)
    monkeypatch.setattr(jit.config, "CPU_NAME", "znver3")
    assert jit.wide_vectors() is None


_TRAIN = """
import numpy as np
from numba.core import config
from kernels import train
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float); Y = np.array([0, 1, 1, 0], float)
rng = np.random.default_rng(3)
n = 77  # vector bodies and remainders of every width
p = [rng.standard_normal((2, 4, n)) * 3, rng.standard_normal((4, n)), rng.standard_normal((4, n)) * 3, np.zeros(n)]
r = train(X, Y, *p, 300, lr=np.linspace(0.1, 8, n), loss=np.where(np.arange(n) % 2, "bce", "mse"), checkpoints=0,
          threads=1)
print(config.CPU_FEATURES is not None and config.CPU_FEATURES.endswith("-prefer-256-bit"))
print(np.concatenate([q.ravel() for q in p] + [r.final_loss]).tobytes().hex())
"""


@pytest.mark.slow
def test_results_are_bitwise_the_same_at_every_vector_width(tmp_path):
    """The kernel trained in this process's configuration (512-bit vectors on AVX-512) and in a fresh cache
    with only SSE (no AVX, no FMA: the fused multiply-adds become calls) gives the same bits."""
    from numba.core import codegen

    narrow = ",".join("-" + f[1:] if f[1:].startswith(("avx", "fma", "evex512", "amx")) else f
                      for f in codegen.get_host_cpu_features().split(","))

    def run(**env):
        out = subprocess.run([sys.executable, "-c", _TRAIN], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={"PATH": os.environ["PATH"], **env})
        return out.stdout.split()

    wide, narrow_run = run(), run(NUMBA_CACHE_DIR=str(tmp_path), NUMBA_CPU_FEATURES=narrow)
    assert wide[0] == str("+avx512f" in codegen.get_host_cpu_features().split(",")) and narrow_run[0] == "False"
    assert wide[1] == narrow_run[1]

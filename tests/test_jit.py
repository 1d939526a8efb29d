"""kernels/jit.py: the Numba cache of the kernels is keyed on all their source files, so a change to a function
in one file recompiles its callers in the others (Numba alone would keep their stale machine code)."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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

"""The options every Numba function of the project is compiled with, and the on-disk cache they use.

`JIT`: IEEE semantics (no fastmath, so rows do not depend on the CPU) and Numba's cache; `KERNEL_JIT`:
the same for the kernels that run in threads (the GIL released).

The cache. Numba keys a function's cached machine code on its own source file only. A function that
calls one of another file (kernels/kernel.py's `_update` inlines kernels/optimizers.py's `update`) would
keep the old callee's code after that file changes, silently: a stale kernel after an edit or an upgrade
that touched only the callee. So every function of the kernels package (and of sweep/grid/hashing.py) is
keyed on the contents of all those files together (`source_stamp`): a change to any of them recompiles
them all at their next call, as on a first start. This is done with cache locators, the classes Numba
asks where a function's cache lives and which stamp makes it current: ours are Numba's own (the
NUMBA_CACHE_DIR, __pycache__ and user-wide ones, in Numba's order) with the stamp replaced, tried first,
and only for those files. Numba's list of locators is not public API: if it moves, the files are cached
as Numba does by default, and `tests/test_jit.py` fails.

Vector width. On x86 with AVX-512, LLVM's tuning for most Intel cores keeps vectorised loops at 256 bits
(its `prefer-256-bit`, against the clock drop of 512-bit instructions). With 512-bit vectors the kernels
trained small networks (XOR's 2-4-1) faster and wide ones (16-16-1 on 272 samples) somewhat slower at their
default tile (docs/performance.md has the figures), so the host's features are given to Numba with that
preference off (`wide_vectors`). The results do not change: each lane's arithmetic is the same at any
width. A user's own NUMBA_CPU_NAME or NUMBA_CPU_FEATURES is left as it is (the way to choose otherwise).
"""
import hashlib
from pathlib import Path

from numba.core import caching, codegen, config

JIT = dict(error_model="numpy", cache=True)
KERNEL_JIT = dict(JIT, nogil=True)

_KERNELS = Path(__file__).resolve().parent
WATCHED = frozenset(str(p) for p in sorted(_KERNELS.glob("*.py"))) | {
    str(_KERNELS.parent / "sweep" / "grid" / "hashing.py")}
_STAMP = None


def source_stamp():
    """The sha256 of the contents of every watched file, in order of their paths (read once per process)."""
    global _STAMP
    if _STAMP is None:
        digest = hashlib.sha256()
        for name in sorted(WATCHED):
            path = Path(name)
            digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
        _STAMP = digest.hexdigest()
    return _STAMP


def _stamped(base):
    class Stamped(base):
        """Numba's locator, for the watched files only, with the stamp of all of them."""

        @classmethod
        def from_function(cls, py_func, py_file):
            if str(Path(py_file).resolve()) not in WATCHED:
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return source_stamp()

    Stamped.__name__ = Stamped.__qualname__ = "Stamped" + base.__name__
    return Stamped


def _install():
    locators = getattr(caching.CacheImpl, "_locator_classes", None)
    if not isinstance(locators, list) or any(getattr(c, "__name__", "").startswith("Stamped") for c in locators):
        return
    bases = [c for c in (getattr(caching, name, None) for name in
                         ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")) if c is not None]
    locators[:0] = [_stamped(base) for base in bases]


def wide_vectors():
    """Numba's CPU features for this process: the host's, with `-prefer-256-bit` where it has AVX-512F;
    None (Numba's default) elsewhere or where the user set the CPU name or features."""
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return None
    features = codegen.get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return None
    return features + ",-prefer-256-bit"


_install()
if (_FEATURES := wide_vectors()) is not None:
    config.CPU_FEATURES = _FEATURES

"""NumPy's seeded PCG64 streams, compiled: one generator per row, many rows per call, GIL released.

Row k of `normal_rows` and `uniform01_rows` is bitwise what
``np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropies[k])))`` draws with
``standard_normal(W)`` and ``random(W)``, for any entropy 0 <= e < 2**64 (uint64). Building a
SeedSequence, a PCG64 and a Generator per seed costs microseconds of Python; here a row costs
nanoseconds. `pcg64_seed` gives the seeded state itself (what ``PCG64(...).state`` holds).

The algorithms are NumPy's (re-implemented, checked in tests/test_rng.py):

- SeedSequence (numpy/random/bit_generator.pyx): the entropy as two 32-bit words (NumPy pads
  one-word entropies with hashes of 0, exactly as it does words 2 and 3 of the pool), hashed into
  a pool of four words, every word mixed into every other, then 8 words drawn from the pool.
  All uint32 arithmetic, done here in uint64 and masked.
- PCG64 seeding (pcg_setseq_128_srandom_r): inc = seed_inc << 1 | 1, state = (inc + seed_state)
  * MULT + inc, mod 2**128, held as (hi, lo) pairs of uint64.
- PCG64's next_uint64 (XSL-RR 128/64): step the LCG first, then output rotr64(hi ^ lo, hi >> 58)
  from the new state; next_double = (next_uint64 >> 11) * 2**-53.
- random_standard_normal (numpy/random/src/distributions/distributions.c): the 256-layer
  ziggurat, with the tables of Numba's copy of NumPy's generator. Its rare branches call exp and
  log1p, which Numba takes from the C library, as NumPy's compiled C does: a platform whose NumPy
  rounds them otherwise (or fuses a multiply-add there) would differ in those draws, and the tests say so.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from kernels.jit import KERNEL_JIT

try:
    from numba.np.random import _constants as _ziggurat
except ImportError as exc:  # private module: a Numba without it cannot draw NumPy's normals here
    raise ImportError("kernels.rng needs NumPy's ziggurat tables from numba.np.random._constants, "
                      "a private module that this Numba does not have") from exc

_KI = np.ascontiguousarray(_ziggurat.ki_double, dtype=np.uint64)
_WI = np.ascontiguousarray(_ziggurat.wi_double, dtype=np.float64)
_FI = np.ascontiguousarray(_ziggurat.fi_double, dtype=np.float64)
_ZIG_R = float(_ziggurat.ziggurat_nor_r)
_ZIG_INV_R = float(_ziggurat.ziggurat_nor_inv_r)

_U64 = np.uint64
_M32, _M52 = _U64(0xFFFFFFFF), _U64(0xFFFFFFFFFFFFF)
_0, _1, _8, _9, _11, _16, _32, _58, _63, _64 = (_U64(v) for v in (0, 1, 8, 9, 11, 16, 32, 58, 63, 64))
_255 = _U64(255)
# SeedSequence's hash and mix constants.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = _U64(0x43B0D7E5), _U64(0x931E8875), _U64(0x8B51F9DD), _U64(0x58F38DED)
_MIX_L, _MIX_R = _U64(0xCA01F9DD), _U64(0x4973F715)
# PCG64's 128-bit LCG multiplier, (hi, lo).
_MULT_HI, _MULT_LO = _U64(0x2360ED051FC65DA4), _U64(0x4385DF649FCCF645)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
_SIGN = np.array([1.0, -1.0])


@intrinsic
def _mulhi(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one widening multiply)."""
    if not (a == types.uint64 and b == types.uint64):
        return None

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


@njit(**KERNEL_JIT)
def _add128(a_hi, a_lo, b_hi, b_lo):
    """a + b mod 2**128, as (hi, lo)."""
    lo = a_lo + b_lo
    carry = _1 if lo < a_lo else _0
    return a_hi + b_hi + carry, lo


@njit(**KERNEL_JIT)
def _step(s_hi, s_lo, inc_hi, inc_lo):
    """The LCG: state * MULT + inc mod 2**128."""
    hi = _mulhi(s_lo, _MULT_LO) + s_lo * _MULT_HI + s_hi * _MULT_LO
    return _add128(hi, s_lo * _MULT_LO, inc_hi, inc_lo)


@njit(**KERNEL_JIT)
def _next_uint64(s_hi, s_lo, inc_hi, inc_lo):
    """(next_uint64, state hi, state lo): the state is stepped, then the new one is output."""
    s_hi, s_lo = _step(s_hi, s_lo, inc_hi, inc_lo)
    x = s_hi ^ s_lo
    rot = s_hi >> _58
    return (x >> rot) | (x << ((_64 - rot) & _63)), s_hi, s_lo


@njit(**KERNEL_JIT)
def _next_double(s_hi, s_lo, inc_hi, inc_lo):
    """(next_double in [0, 1), state hi, state lo)."""
    r, s_hi, s_lo = _next_uint64(s_hi, s_lo, inc_hi, inc_lo)
    return (r >> _11) * _TO_UNIT, s_hi, s_lo


@njit(**KERNEL_JIT)
def _hashmix(value, h, mult):
    """SeedSequence's hash of one word with the running constant h; returns (hash, next h)."""
    value = value ^ h
    h = (h * mult) & _M32
    value = (value * h) & _M32
    return value ^ (value >> _16), h


@njit(**KERNEL_JIT)
def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> _16)


@njit(**KERNEL_JIT)
def _mix_from(src, a, b, c, h):
    """Mix hashes of pool word `src` into the other three words (a, b, c, in pool order)."""
    t, h = _hashmix(src, h, _MULT_A)
    a = _mix(a, t)
    t, h = _hashmix(src, h, _MULT_A)
    b = _mix(b, t)
    t, h = _hashmix(src, h, _MULT_A)
    c = _mix(c, t)
    return a, b, c, h


@njit(**KERNEL_JIT)
def _word_pair(p_lo, p_hi, h):
    """Two successive generate_state words as one uint64 (little-endian); returns (word, next h)."""
    lo, h = _hashmix(p_lo, h, _MULT_B)
    hi, h = _hashmix(p_hi, h, _MULT_B)
    return lo | (hi << _32), h


@njit(**KERNEL_JIT)
def _seeded(entropy):
    """(state hi, state lo, inc hi, inc lo) of PCG64(SeedSequence(entropy))."""
    e = _U64(entropy)
    h = _INIT_A
    p0, h = _hashmix(e & _M32, h, _MULT_A)
    p1, h = _hashmix(e >> _32, h, _MULT_A)
    p2, h = _hashmix(_0, h, _MULT_A)
    p3, h = _hashmix(_0, h, _MULT_A)
    p1, p2, p3, h = _mix_from(p0, p1, p2, p3, h)
    p0, p2, p3, h = _mix_from(p1, p0, p2, p3, h)
    p0, p1, p3, h = _mix_from(p2, p0, p1, p3, h)
    p0, p1, p2, h = _mix_from(p3, p0, p1, p2, h)
    # generate_state(4, uint64): 8 words cycling over the pool -> seed state (hi, lo), seed inc (hi, lo)
    h = _INIT_B
    seed_hi, h = _word_pair(p0, p1, h)
    seed_lo, h = _word_pair(p2, p3, h)
    sinc_hi, h = _word_pair(p0, p1, h)
    sinc_lo, h = _word_pair(p2, p3, h)
    inc_hi, inc_lo = (sinc_hi << _1) | (sinc_lo >> _63), (sinc_lo << _1) | _1
    s_hi, s_lo = _add128(inc_hi, inc_lo, seed_hi, seed_lo)  # state 0 stepped is inc; add the seed
    s_hi, s_lo = _step(s_hi, s_lo, inc_hi, inc_lo)
    return s_hi, s_lo, inc_hi, inc_lo


@njit(**KERNEL_JIT)
def _ziggurat_candidate(r):
    """(x, layer, rabs): the candidate that one uint64 draw r picks: 8 bits of layer, a sign bit, 52 bits."""
    layer = np.intp(r & _255)
    rabs = (r >> _9) & _M52
    # The sign as a product, not a branch: a coin flip per draw mispredicts half the time (x * -1.0 is -x).
    return rabs * _WI[layer] * _SIGN[(r >> _8) & _1], layer, rabs


@njit(**KERNEL_JIT)
def _standard_normal(s_hi, s_lo, inc_hi, inc_lo):
    """(one standard_normal draw, state hi, state lo): NumPy's ziggurat, draw for draw."""
    r, s_hi, s_lo = _next_uint64(s_hi, s_lo, inc_hi, inc_lo)
    x, layer, rabs = _ziggurat_candidate(r)
    if rabs < _KI[layer]:  # inside the layer's rectangle: 99% of draws
        return x, s_hi, s_lo
    return _standard_normal_rejected(r, s_hi, s_lo, inc_hi, inc_lo)


@njit(**KERNEL_JIT)
def _standard_normal_rejected(r, s_hi, s_lo, inc_hi, inc_lo):
    """`_standard_normal` from a draw r outside its layer's rectangle (kept out of the hot loop)."""
    while True:
        x, layer, rabs = _ziggurat_candidate(r)
        if rabs < _KI[layer]:
            return x, s_hi, s_lo
        if layer == 0:  # the tail beyond the base layer's edge ziggurat_nor_r: Marsaglia's method
            while True:
                u, s_hi, s_lo = _next_double(s_hi, s_lo, inc_hi, inc_lo)
                xx = -_ZIG_INV_R * math.log1p(-u)
                u, s_hi, s_lo = _next_double(s_hi, s_lo, inc_hi, inc_lo)
                yy = -math.log1p(-u)
                if yy + yy > xx * xx:
                    x = _ZIG_R + xx
                    return (-x if (rabs >> _8) & _1 else x), s_hi, s_lo
        else:  # the wedge between layers layer - 1 and layer
            u, s_hi, s_lo = _next_double(s_hi, s_lo, inc_hi, inc_lo)
            if (_FI[layer - 1] - _FI[layer]) * u + _FI[layer] < math.exp(-0.5 * x * x):
                return x, s_hi, s_lo
        r, s_hi, s_lo = _next_uint64(s_hi, s_lo, inc_hi, inc_lo)


@njit(**KERNEL_JIT)
def pcg64_seed(entropies, out):
    """out[k] = (state hi, state lo, inc hi, inc lo), uint64 (K, 4): PCG64(SeedSequence(entropies[k])).state."""
    if out.shape[0] != entropies.shape[0] or out.shape[1] != 4:
        raise ValueError("pcg64_seed: out must have shape (len(entropies), 4)")
    for k in range(entropies.shape[0]):
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = _seeded(entropies[k])


@njit(**KERNEL_JIT)
def normal_rows(entropies, out):
    """out[k] = Generator(PCG64(SeedSequence(entropies[k]))).standard_normal(W), out float64 (K, W)."""
    if out.shape[0] != entropies.shape[0]:
        raise ValueError("normal_rows: out must have one row per entropy")
    for k in range(out.shape[0]):
        s_hi, s_lo, inc_hi, inc_lo = _seeded(entropies[k])
        for j in range(out.shape[1]):
            x, s_hi, s_lo = _standard_normal(s_hi, s_lo, inc_hi, inc_lo)
            out[k, j] = x


@njit(**KERNEL_JIT)
def uniform01_rows(entropies, out):
    """out[k] = Generator(PCG64(SeedSequence(entropies[k]))).random(W), out float64 (K, W).

    ``uniform(low, high)`` is ``low + (high - low) * random()``, rounded after each operation."""
    if out.shape[0] != entropies.shape[0]:
        raise ValueError("uniform01_rows: out must have one row per entropy")
    for k in range(out.shape[0]):
        s_hi, s_lo, inc_hi, inc_lo = _seeded(entropies[k])
        for j in range(out.shape[1]):
            u, s_hi, s_lo = _next_double(s_hi, s_lo, inc_hi, inc_lo)
            out[k, j] = u

"""Vectorisable `exp` and `sigmoid` for Numba kernels.

A pip-installed Numba lowers ``math.exp`` to a scalar libm call, which stops
LLVM from vectorising the loops over lanes. These versions use only fused
multiply-adds (explicit llvm.fma), a rounding, and an addition and a shift of
bits to build 2**n, so a loop over lanes compiles to SIMD code.

Method: x = n*ln2 + r with |r| <= ln2/2 (n = x/ln2 rounded to the nearest
integer by adding a large constant; Cody-Waite: ln2 split into a high and a
low part, each product fused), exp(r) by a polynomial whose truncation error
is far below an ulp (degree 11, near-minimax coefficients from Chebyshev
interpolation, for float64; degree 6, minimax for the relative error of exp
by Lawson's iteration, 0.07 ulp, for float32), then scaled by 2**n built
from its exponent bits.

Range: results that would be subnormal (x < log(2**-1022) in float64,
x < log(2**-126) in float32) are flushed to 0 -- sigmoid cannot tell, since
1 + tiny rounds to 1 either way -- and x above the overflow threshold gives
inf; NaN propagates. Elsewhere the error is within 1 ulp, tested in
``tests/test_fastmath.py`` over the whole range sigmoid can meet.
"""
import math

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from kernels.jit import JIT

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: low 32 bits zero
_LN2_LO = 1.90821492927058770002e-10
_F64_MAX_X = 709.782712893384  # exp overflows above this
_F64_TINY_X = -708.3964185322641  # log(2**-1022): below, results are flushed to 0

_LN2_HI_F32 = np.float32(0.693145751953125)  # 0x3f317200: low 12 bits zero
_LN2_LO_F32 = np.float32(1.428606765330187e-06)
_F32_MAX_X = np.float32(88.72283)
_F32_TINY_X = np.float32(-87.33654)  # log(2**-126)


@intrinsic
def _scale_bits_f64(typingctx, t):
    """The float64 whose bits are those of t shifted left by 52: with t = m + k, m = 1.5 * 2**52 and
    k an integer in [0, 2047], the low bits of t hold k and the result is 2**(k - 1023) (inf at 2047)."""
    if t != types.float64:
        return None

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], ir.IntType(64))
        return builder.bitcast(builder.shl(bits, ir.Constant(ir.IntType(64), 52)), ir.DoubleType())

    return types.float64(types.float64), codegen


@intrinsic
def _scale_bits_f32(typingctx, t):
    """float32 twin of `_scale_bits_f64`: t = 1.5 * 2**23 + k, k in [0, 255], shifted left by 23."""
    if t != types.float32:
        return None

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], ir.IntType(32))
        return builder.bitcast(builder.shl(bits, ir.Constant(ir.IntType(32), 23)), ir.FloatType())

    return types.float32(types.float32), codegen


# An empty inline assembly block per architecture, its output tied to its input in a float register.
_OPAQUE_ASM = {"x86_64": "=x,0", "aarch64": "=w,0", "arm64": "=w,0"}.get(llvm.get_process_triple().split("-")[0])


def opaque(x):
    """x, as a value LLVM cannot see is a constant (x itself when called from Python).

    The kernels hold their working precision's 1 this way and scale every constant of exp, sigmoid and
    tanh by it. Constants, LLVM rematerialises inside each loop when vector registers run short: with
    Numba's large code model a broadcast from memory and the load of its address, two instructions
    per constant per iteration (docs/performance.md counts them). Products of an opaque value it
    computes once before the loop and, short of registers, keeps on the stack, where an instruction
    can use them as a memory operand. 1 x c is c: the results are the same bits."""
    return x


@overload(opaque)
def _opaque_overload(x):
    if not isinstance(x, types.Float):
        return None
    if _OPAQUE_ASM is None:  # no inline assembly for this architecture: the identity (slower loops)
        return lambda x: x
    return lambda x: _opaque_asm(x)


@intrinsic
def _opaque_asm(typingctx, x):
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        asm = ir.InlineAsm(ir.FunctionType(ty, [ty]), "", _OPAQUE_ASM, side_effect=False)
        return builder.call(asm, [args[0]])

    return x(x), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a*b + c with one rounding (llvm.fma), in float32 or float64.

    Explicit, so that the vector body and the scalar remainder of a loop round
    alike: LLVM never contracts a*b + c on its own here (no fastmath).
    """
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


# 2**n from an integral float n is built in float registers: adding 1.5 * 2**52 + 1023 (the bias) leaves
# n + 1023 in the low bits of the sum, exactly, and a shift moves them into the exponent. A conversion to
# an integer would do the same, but AVX2 has no packed float64-to-int64 conversion: the compiled loops
# took four scalar ones per vector there. The same sum rounds x / ln2 to the nearest integer n.
_BIASED_F64 = 6755399441055744.0 + 1023.0
_BIASED_F32 = np.float32(12582912.0 + 127.0)


@njit(**JIT)
def _pow2_f64(n):
    """2**n for an integral float64 n in [-1023, 1024] (-1023 gives 0, 1024 inf)."""
    return _scale_bits_f64(n + _BIASED_F64)


@njit(**JIT)
def _pow2_f32(n):
    """2**n for an integral float32 n in [-127, 128] (-127 gives 0, 128 inf)."""
    return _scale_bits_f32(n + _BIASED_F32)


@njit(**JIT)
def _reduced_expm1_64(x, one=1.0, sign=1.0):
    """(exp(v) - 1, n, t) for v = sign x = n ln2 + r, |r| <= ln2/2, with t the biased sum whose bits,
    shifted (`_scale_bits_f64`), are 2**n: the core of exp64, sigmoid and tanh. Every constant is scaled by
    `one`, which is 1 (see `opaque`). `sign`, a literal 1 or -1, is folded into the constants: sigmoid
    takes exp(-z) without negating z. With sign -1 every intermediate below is the negative of the one
    that sign 1 computes for -x (w = -r, and the polynomial's coefficients alternate in sign), and the
    results are the same bits, as IEEE rounding is symmetric."""
    t = fma(x, (sign * _LOG2E) * one, _BIASED_F64 * one)
    n = t - _BIASED_F64 * one
    w = fma(n, (-sign * _LN2_LO) * one, fma(n, (-sign * _LN2_HI) * one, x))  # sign r
    p = (sign * 2.5110049204818658e-08) * one
    p = fma(p, w, 2.763265472252779e-07 * one)
    p = fma(p, w, (sign * 2.755724088722987e-06) * one)
    p = fma(p, w, 2.4801485441561313e-05 * one)
    p = fma(p, w, (sign * 0.00019841269890076403) * one)
    p = fma(p, w, 0.0013888888952352863 * one)
    p = fma(p, w, (sign * 0.008333333333319589) * one)
    p = fma(p, w, 0.04166666666648795 * one)
    p = fma(p, w, (sign * 0.1666666666666668) * one)
    p = fma(p, w, 0.5000000000000019 * one)
    p = fma(p * w, w, sign * w)
    return p, n, t


@njit(**JIT)
def _reduced_expm1_32(x, one=np.float32(1.0), sign=np.float32(1.0)):
    """float32 twin of `_reduced_expm1_64`."""
    t = fma(x, (sign * np.float32(_LOG2E)) * one, _BIASED_F32 * one)
    n = t - _BIASED_F32 * one
    w = fma(n, (-sign * _LN2_LO_F32) * one, fma(n, (-sign * _LN2_HI_F32) * one, x))
    p = np.float32(0.0013863799395039678) * one
    p = fma(p, w, (sign * np.float32(0.008367478847503662)) * one)
    p = fma(p, w, np.float32(0.041667237877845764) * one)
    p = fma(p, w, (sign * np.float32(0.16666534543037415)) * one)
    p = fma(p, w, np.float32(0.5) * one)
    p = fma(p * w, w, sign * w)
    return p, n, t


@njit(**JIT)
def exp64(x):
    """exp(x) for float64: branch-free but for the selects at the ends."""
    xc = min(max(x, _F64_TINY_X), 710.0)
    p, n, _ = _reduced_expm1_64(xc)
    # n can reach 1024 just below the overflow threshold: scale in two steps there.
    s = 1.0 if n > 0.0 else 0.0
    y = ((p + 1.0) * _pow2_f64(n - s)) * (1.0 + s)
    y = math.inf if x > _F64_MAX_X else y
    y = 0.0 if x < _F64_TINY_X else y
    return x + x if x != x else y


@njit(**JIT)
def exp32(x):
    """exp(x) for float32, computed in float32 throughout."""
    xc = min(max(x, _F32_TINY_X), np.float32(89.0))
    p, n, _ = _reduced_expm1_32(xc)
    s = np.float32(1.0) if n > np.float32(0.0) else np.float32(0.0)
    y = ((p + np.float32(1.0)) * _pow2_f32(n - s)) * (np.float32(1.0) + s)
    y = np.float32(math.inf) if x > _F32_MAX_X else y
    y = np.float32(0.0) if x < _F32_TINY_X else y
    return x + x if x != x else y


def vexp(x):
    """exp in the precision of x; NumPy's exp when called from Python."""
    return np.exp(x)


@overload(vexp)
def _vexp_overload(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if x == types.float64:
        return lambda x: exp64(x)
    return None


@njit(**JIT)
def _sigmoid64(z, one=1.0):
    """1 / (1 + exp(-z)) with exp specialised to what sigmoid needs; `one` is 1 (see `opaque`).

    -z is clamped to [-40, 710]: below -40, exp(-z) < 2**-53 and 1 + exp(-z)
    rounds to 1 anyway; above 709.43 the scale 2**1024 is inf and the result
    0 (NumPy's formula gives subnormals down to z = -709.78, then 0). The
    clamps are written so that NaN passes through them.
    """
    z = -710.0 * one if z < -710.0 * one else z
    z = 40.0 * one if z > 40.0 * one else z
    p, _, t = _reduced_expm1_64(z, one, -1.0)
    return one / (one + (p + one) * _scale_bits_f64(t))


@njit(**JIT)
def _sigmoid32(z, one=np.float32(1.0)):
    """float32 twin of `_sigmoid64`: -z clamped to [-18, 89]."""
    z = np.float32(-89.0) * one if z < np.float32(-89.0) * one else z
    z = np.float32(18.0) * one if z > np.float32(18.0) * one else z
    p, _, t = _reduced_expm1_32(z, one, np.float32(-1.0))
    return one / (one + (p + one) * _scale_bits_f32(t))


def sigmoid(z, one=None):
    """1 / (1 + exp(-z)), the notebooks' formula (NumPy when called from Python). In a kernel, `one`, its
    working precision's 1 as an `opaque` value, keeps the constants out of the loops' bodies."""
    return 1.0 / (1.0 + np.exp(-z))


def _by_precision(f32, f64):
    """The compiled overload of a function of (z, one=None): its float32 or float64 form, given `one` if the
    call passes it (else the form's own constant 1)."""
    def typer(z, one=None):
        if z not in (types.float32, types.float64):
            return None
        f = f32 if z == types.float32 else f64
        if one is None or isinstance(one, (types.NoneType, types.Omitted)):
            return lambda z, one=None: f(z)
        return lambda z, one=None: f(z, one)

    return typer


overload(sigmoid)(_by_precision(_sigmoid32, _sigmoid64))


@njit(**JIT)
def _tanh64(z, one=1.0):
    """tanh(z) = e / (e + 2) with e = expm1(2|z|), signed; |z| clamped to 20 (tanh is 1 in float64
    beyond 19.1). expm1 is taken from the reduced exp: p itself when n = 0 (|2z| <= ln2/2), so
    small arguments keep full relative precision. NaN passes through. `one` is 1 (see `opaque`)."""
    u = abs(z)
    u = 20.0 * one if u > 20.0 * one else u
    p, n, t = _reduced_expm1_64(u + u, one)
    e = p if n == 0.0 else (p + one) * _scale_bits_f64(t) - one
    t = e / (e + 2.0 * one)
    return -t if z < 0.0 else t


@njit(**JIT)
def _tanh32(z, one=np.float32(1.0)):
    """float32 twin of `_tanh64`: |z| clamped to 10."""
    u = abs(z)
    u = np.float32(10.0) * one if u > np.float32(10.0) * one else u
    p, n, t = _reduced_expm1_32(u + u, one)
    e = p if n == np.float32(0.0) else (p + one) * _scale_bits_f32(t) - one
    t = e / (e + np.float32(2.0) * one)
    return -t if z < np.float32(0.0) else t


def tanh(z, one=None):
    """The hyperbolic tangent (NumPy's when called from Python); `one` as in `sigmoid`."""
    return np.tanh(z)


overload(tanh)(_by_precision(_tanh32, _tanh64))


@njit(**JIT)
def tanh_array(z):
    """Element-wise kernel tanh over a 1-D array (for tests)."""
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = tanh(z[i])
    return out


@njit(**JIT)
def exp_array(x):
    """Element-wise vexp over a 1-D array (for tests and the benchmark)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])
    return out


@njit(**JIT)
def sigmoid_array(z):
    """Element-wise kernel sigmoid over a 1-D array (for tests)."""
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = sigmoid(z[i])
    return out

"""Initial weights of one network, and lane stacking: arrays out.

`initial_weights` draws one network with NumPy; `initial_lanes` draws many, the schemes of SCHEME_CODE
with the compiled PCG64 streams of `kernels.rng`, bit for bit the same draws.

A network D-H-1 has W1 (D, H), b1 (H,), W2 (H,), b2 (a 0-d array).

The draw depends only on (seed, scheme, D, H). It is made in float64,
then the weights are multiplied by `init_scale`, then everything is cast to
`dtype`. So one seed gives the same *direction* in weight space at every
init_scale, learning rate, loss, momentum...: comparisons across a grid are
paired (common random numbers), and a float32 run starts from the float64
draw rounded once.

Schemes:

``normal``
    W1 ~ N(0, 1) (D, H), then W2 ~ N(0, 1) (H,), times init_scale;
    biases = bias_init.
``uniform``
    W1 ~ U(-1, 1), then W2 ~ U(-1, 1), times init_scale; biases = bias_init.
``xavier``
    Glorot uniform: W1 ~ U(-a1, a1) with a1 = sqrt(6 / (D + H)), then
    W2 ~ U(-a2, a2) with a2 = sqrt(6 / (H + 1)), times init_scale;
    biases = bias_init.

    These three draw from ``np.random.Generator(np.random.PCG64(
    np.random.SeedSequence(seed + code * 2**32 + D * 2**40 + H * 2**48)))``
    (code: normal 1, uniform 2, xavier 3), W1 first
    (row-major), then W2.
``numpy-legacy-normal``
    Notebooks 000 and 002: ``np.random.seed(seed); W1 = randn(D, H);
    W2 = randn(H, 1)``, both times init_scale; biases = bias_init (zero by
    default, as in the notebooks). Drawn from a private
    ``np.random.RandomState(seed)``, never the global state.
``numpy-legacy-uniform``
    Notebook 001: ``np.random.seed(seed); W1 = rand(H, D); b1 = rand(H, 1);
    W2 = rand(1, H); b2 = rand(1, 1)`` in that order (column layout),
    converted to ours (W1 transposed to (D, H), W2 flattened to (H,)). The
    weights are multiplied by init_scale; the biases are drawn, U[0, 1), and
    neither scaled nor set from bias_init.
"""
import math

import numpy as np

from kernels.vocab import INIT_SCHEMES as SCHEMES

# Part of the seed-sequence entropy: fixed forever, or every run's draw would change.
SCHEME_CODE = {"normal": 1, "uniform": 2, "xavier": 3}


def seed_entropy(seed, scheme, n_inputs, hidden):
    """(seed, scheme, D, H) packed into one integer: seed + code * 2**32 + D * 2**40 + H * 2**48.

    One integer rather than a list of four, because NumPy builds a SeedSequence
    from an int about three times faster, and a sweep builds one per seed.
    """
    return int(seed) | SCHEME_CODE[scheme] << 32 | int(n_inputs) << 40 | int(hidden) << 48


def generator(seed, scheme, n_inputs, hidden):
    """The `np.random.Generator` that draws (seed, scheme, D, H)'s weights."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed_entropy(seed, scheme, n_inputs, hidden))))


def _check(scheme, seed, n_inputs, hidden, init_scale, bias_init, dtype):
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    for name, v in (("n_inputs", n_inputs), ("hidden", hidden)):
        if isinstance(v, bool) or int(v) != v or int(v) < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not (math.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    if not math.isfinite(bias_init):
        raise ValueError(f"bias_init must be finite, got {bias_init!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    return dtype


def _direction(scheme, seed, D, H, rng=None):
    """The unscaled float64 draw: (W1 (D, H), W2 (H,), the scheme's drawn biases (b1, b2) or None).

    `rng`: `generator(seed, scheme, D, H)` when the caller has it already."""
    W1, W2, drawn, _ = _draw(scheme, seed, D, H, rng)
    return W1, W2, drawn


def _draw(scheme, seed, D, H, rng=None):
    """`_direction`'s draw and the source that continues it: `_bias_draw(source, ...)` then draws the
    biases of bias_init = "draw" after W2 (b1, then b2), leaving the weights' draw unchanged."""
    if scheme == "numpy-legacy-normal":
        rs = np.random.RandomState(seed)
        return rs.randn(D, H), rs.randn(H, 1)[:, 0], None, rs
    if scheme == "numpy-legacy-uniform":
        rs = np.random.RandomState(seed)
        W1 = rs.rand(H, D).T
        b1 = rs.rand(H, 1)[:, 0]
        W2 = rs.rand(1, H)[0]
        return W1, W2, (b1, rs.rand(1, 1)[0, 0]), rs
    rng = rng or generator(seed, scheme, D, H)
    if scheme == "normal":
        return rng.standard_normal((D, H)), rng.standard_normal(H), None, rng
    a1, a2 = _uniform_bounds(scheme, D, H)
    return rng.uniform(-a1, a1, (D, H)), rng.uniform(-a2, a2, H), None, rng


def _uniform_bounds(scheme, D, H):
    """(a1, a2): the layers' U(-a, a) bounds of the uniform and xavier schemes."""
    return (1.0, 1.0) if scheme == "uniform" else (math.sqrt(6.0 / (D + H)), math.sqrt(6.0 / (H + 1)))


def _bias_draw(scheme, source, D, H, drawn):
    """Unscaled biases (b1 (H,), b2) for bias_init = "draw", drawn with the weights' scheme from `source`
    (where `_draw` left it): N(0, 1) for the normal schemes, the layer's U(-a, a) for uniform and xavier;
    numpy-legacy-uniform draws its biases anyway (`drawn`)."""
    if drawn is not None:
        return drawn
    if scheme == "numpy-legacy-normal":
        return source.randn(H), source.randn()
    if scheme == "normal":
        return source.standard_normal(H), source.standard_normal()
    a1, a2 = _uniform_bounds(scheme, D, H)
    return source.uniform(-a1, a1, H), source.uniform(-a2, a2)


def initial_weights(scheme, seed, n_inputs, hidden, init_scale=1.0, bias_init=0.0, dtype=np.float64):
    """(W1 (D, H), b1 (H,), W2 (H,), b2 ()) of one network, as arrays of `dtype`.

    bias_init: a number (every bias, unscaled), or "draw": biases drawn after W2 with the weights'
    scheme and multiplied by init_scale like the weights."""
    draw = _draws_biases(bias_init)
    dtype = _check(scheme, seed, n_inputs, hidden, init_scale, 0.0 if draw else bias_init, dtype)
    W1, W2, drawn, source = _draw(scheme, int(seed), int(n_inputs), int(hidden))
    if draw:
        b1, b2 = _bias_draw(scheme, source, int(n_inputs), int(hidden), drawn)
        b1, b2 = b1 * float(init_scale), b2 * float(init_scale)
    else:
        b1, b2 = drawn if drawn is not None else (np.full(int(hidden), float(bias_init)), float(bias_init))
    W1 = W1 * float(init_scale)
    W2 = W2 * float(init_scale)
    return (np.ascontiguousarray(W1, dtype=dtype), np.ascontiguousarray(b1, dtype=dtype),
            np.ascontiguousarray(W2, dtype=dtype), np.asarray(b2, dtype=dtype).reshape(()))


def _draws_biases(bias_init):
    if isinstance(bias_init, str):
        if bias_init != "draw":
            raise ValueError(f"bias_init must be a number or 'draw', got {bias_init!r}")
        return True
    return False


def stack_lanes(networks):
    """Stack per-network (W1, b1, W2, b2) tuples into lane arrays, lane axis last.

    Returns (W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)), C-contiguous and
    writeable, in the dtype of the networks (which must all share it and
    their shapes).
    """
    networks = list(networks)
    if not networks:
        raise ValueError("stack_lanes needs at least one network")
    W1_0, b1_0, W2_0, b2_0 = networks[0]
    dtype = np.asarray(W1_0).dtype
    D, H = np.shape(W1_0)
    shapes = ((D, H), (H,), (H,), ())
    for i, net in enumerate(networks):
        if len(net) != 4:
            raise ValueError(f"network {i}: expected (W1, b1, W2, b2), got {len(net)} arrays")
        for name, arr, shape in zip(("W1", "b1", "W2", "b2"), net, shapes):
            arr = np.asarray(arr)
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"network {i}: {name} has shape {arr.shape} and dtype {arr.dtype}; "
                                 f"expected {shape} and {dtype} like network 0")
    return tuple(np.ascontiguousarray(np.stack([np.asarray(net[k]) for net in networks], axis=-1), dtype=dtype)
                 for k in range(4))


def initial_lanes(schemes, seeds, init_scales, bias_inits, n_inputs, hidden, dtype=np.float64):
    """Lane arrays (W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,)) for L networks.

    Lane j is bitwise `initial_weights(schemes[j], seeds[j], D, H, init_scales[j],
    bias_inits[j], dtype)`, but each distinct (scheme, seed) is drawn once: a
    sweep over scales and learning rates pays one draw per seed, not per run.
    bias_inits: numbers, NaN for "draw".
    """
    schemes = np.asarray(schemes, dtype=object).reshape(-1)
    seeds = np.asarray(seeds).reshape(-1)
    scales = np.asarray(init_scales, dtype=np.float64)
    biases = np.asarray(bias_inits, dtype=np.float64)
    n = len(schemes)
    D, H = int(n_inputs), int(hidden)
    _check(SCHEMES[0], 0, D, H, 1.0, 0.0, dtype)
    draw = np.isnan(biases)
    if n and not (np.all(np.isfinite(scales) & (scales > 0)) and np.all(np.isfinite(biases) | draw)):
        raise ValueError("init_scale must be finite and > 0, and bias_init finite (or NaN: drawn), in every lane")
    index = {name: i for i, name in enumerate(SCHEMES)}
    try:
        scheme_ids = np.fromiter(map(index.__getitem__, schemes.tolist()), np.int64, n)
    except (KeyError, TypeError):
        bad = next(name for name in schemes.tolist() if name not in index)
        raise ValueError(f"unknown init scheme {bad!r}; expected one of {', '.join(SCHEMES)}") from None
    if seeds.dtype.kind not in "iu" or seeds.shape != (n,):
        seeds = np.array([_seed_int(v) for v in seeds.tolist()], np.int64).reshape(-1)
    if n and (seeds.min() < 0 or seeds.max() >= 2**32):
        bad = seeds[(seeds < 0) | (seeds >= 2**32)][0]
        raise ValueError(f"seed must be an integer in [0, 2**32), got {int(bad)!r}")
    from kernels.lanes import spread  # imports Numba: kept out of `import kernels.init`

    keys, codes = np.unique(scheme_ids << 32 | seeds.astype(np.int64), return_inverse=True)
    any_draw = bool(draw.any())
    width = D * H + H + (H + 1 if any_draw else 0)
    U = np.empty((len(keys), width))  # the W1 (D, H), W2 (H,) [b1 (H,), b2] draws of each key, in draw order
    drawn = None  # numpy-legacy-uniform's own biases: (b1 (H,), b2) in the columns of its keys
    key_ids, key_seeds = keys >> 32, keys & 0xFFFFFFFF
    ends = np.searchsorted(key_ids, np.arange(len(SCHEMES) + 1))  # keys sort by scheme: one block of U each
    for i, scheme in enumerate(SCHEMES):
        first, stop = int(ends[i]), int(ends[i + 1])
        if first == stop:
            continue
        if scheme in SCHEME_CODE:
            _fill_many(U[first:stop], scheme, key_seeds[first:stop], D, H)
            continue
        for k in range(first, stop):
            own = _fill(U[k], scheme, int(key_seeds[k]), D, H, any_draw)
            if own is not None:
                drawn = np.full((H + 1, len(keys)), np.nan) if drawn is None else drawn
                drawn[:H, k], drawn[H, k] = own
    # (width, n) in `dtype`: initial_weights multiplies the float64 draw by init_scale and rounds the product
    # once to dtype; so does `spread`. W1 and W2 are disjoint contiguous views of it.
    lanes = spread(U, codes, scales, dtype)
    W1, W2 = lanes[:D * H].reshape(D, H, n), lanes[D * H:D * H + H]
    b1, b2 = np.broadcast_to(biases, (H, n)), biases
    if drawn is not None:  # numpy-legacy-uniform's own biases, unscaled, unless bias_init is "draw" (below)
        own = drawn[:, codes]
        has_own = ~np.isnan(own[H])
        b1, b2 = np.where(has_own, own[:H], b1), np.where(has_own, own[H], b2)
    if any_draw:  # exact in float64: the drawn biases were rounded to dtype with the weights
        b1 = np.where(draw, lanes[D * H + H:D * H + 2 * H], b1)
        b2 = np.where(draw, lanes[-1], b2)
    # b1 and b2 may still be views of bias_inits: copies (the kernels write the lanes).
    return W1, np.array(b1, dtype=dtype, order="C"), W2, np.array(b2, dtype=dtype, order="C")


def _fill(row, scheme, seed, D, H, with_biases):
    """Write one key's draw into its row of U (W1, W2, then the drawn biases); return the scheme's own
    drawn biases (numpy-legacy-uniform) or None."""
    W1, W2, drawn, source = _draw(scheme, seed, D, H)
    row[:D * H], row[D * H:D * H + H] = W1.reshape(-1), W2
    if with_biases:
        b1, b2 = _bias_draw(scheme, source, D, H, drawn)
        row[D * H + H:D * H + 2 * H], row[-1] = b1, b2
    return drawn


def _fill_many(block, scheme, seeds, D, H):
    """`_fill` for many seeds of a scheme of SCHEME_CODE at once: row k of `block` (W1, W2, then b1, b2 when
    it has their columns) is bitwise what `_fill` writes for seeds[k].

    A Generator per seed, seeded through NumPy's SeedSequence, cost 6 to 18 us of Python per seed with the
    GIL held; the compiled streams of `kernels.rng` (the same seeding and draws) cost ~0.1 us per seed
    (D=2, H=4) and release the GIL."""
    from kernels import rng  # imports Numba: kept out of `import kernels.init`

    entropies = np.uint64(seed_entropy(0, scheme, D, H)) | seeds.astype(np.uint64)
    if scheme == "normal":
        rng.normal_rows(entropies, block)  # one stream, drawn in _draw's (then _bias_draw's) order
        return
    rng.uniform01_rows(entropies, block)
    a1, a2 = _uniform_bounds(scheme, D, H)
    for cols, a in ((slice(0, D * H), a1), (slice(D * H, D * H + H), a2),
                    (slice(D * H + H, D * H + 2 * H), a1), (slice(D * H + 2 * H, None), a2)):
        part = block[:, cols]  # rng.uniform(-a, a) is -a + (a - -a) * random(), rounded after each operation
        part *= a - -a
        part += -a


def _seed_int(value):
    if isinstance(value, (bool, np.bool_)) or int(value) != value:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {value!r}")
    return int(value)

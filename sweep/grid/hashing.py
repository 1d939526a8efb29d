"""SHA-256 of many messages at once, each the concatenation of shared fragments.

`hex16_digests` is what `sweep.grid.ids.run_ids` needs: a run's canonical JSON
is a join of fragments (each parameter's distinct values written once), and its
`run_id` is the first 16 hex digits of the SHA-256 of that text. Hashing in a
Python loop costs microseconds per run; here the whole table is hashed in
compiled code, bit for bit the digests of `hashlib`.

How:

- The fragments of every piece are packed into one uint8 buffer with
  offsets, and a message is its codes into them: no message is kept whole
  beyond the batch being hashed (memory: the output and the codes, plus
  LANES padded messages per thread).
- The constant leading bytes (in run ids a long prefix: the parameters
  before the first one that varies) are compressed once; every message
  starts from the state after the whole 64-byte blocks of that prefix.
- LANES messages are compressed together, the lane axis innermost, so LLVM
  turns the 32-bit word operations into SIMD across messages (eight lanes
  to an AVX2 register). A chunk's messages are ordered by length, and a
  batch holds messages of one block count.
- A lane's padded message is written into its row of a per-thread buffer;
  a constant piece already in its place there (the lane's previous message
  had it at the same offset) is not copied again, nor is the padding of a
  message as long.
- Ranges of messages run in threads (the kernel releases the GIL).

Tested against `hashlib` in `tests/test_hashing.py`.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from kernels.jit import JIT, KERNEL_JIT

LANES = 128  # messages compressed together
CHUNK = 1024  # messages ordered by length together

_K = np.array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
], dtype=np.uint32)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_IV = np.array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
               dtype=np.uint32)


# Word arithmetic. Numba widens uint32 operands to 64 bits; every operation's result is cut back to 32
# bits (u32) so that LLVM computes in 32-bit words, eight to an AVX2 register, when it vectorises the
# loops over lanes.
u32 = np.uint32


@njit(inline="always", **JIT)  # inlined by Numba: LLVM then sees the shifts, never a call
def _rotr(x, n):
    return u32((x >> n) | (x << (32 - n)))


_LITTLE = sys.byteorder == "little"


@njit(inline="always", **JIT)
def _big_endian(x):
    """The big-endian word whose bytes are stored in the native word x."""
    if _LITTLE:
        return u32((x << 24) | ((x << 8) & 0xFF0000) | ((x >> 8) & 0xFF00) | (x >> 24))
    return x


@njit(**JIT)
def _compress(state, w, a, e, lanes):
    """One block per lane: state[word, lane] += the SHA-256 rounds over the block in w[0:16, lane], for
    lanes 0..lanes-1. Scratch: w (64 rows), a and e (8 rows each: the last values of a and of e, a ring)."""
    for t in range(16, 64):
        for lane in range(lanes):
            x = w[t - 15, lane]
            y = w[t - 2, lane]
            s0 = u32(_rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3))
            s1 = u32(_rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10))
            w[t, lane] = w[t - 16, lane] + s0 + w[t - 7, lane] + s1
    # In round t, a is a[(t + 3) % 8], b a[(t + 2) % 8], c a[(t + 1) % 8], d a[t % 8]; e, f, g, h likewise in e.
    for j in range(4):
        for lane in range(lanes):
            a[3 - j, lane] = state[j, lane]
            e[3 - j, lane] = state[4 + j, lane]
    for t in range(64):
        k = _K[t]
        r0, r1, r2, r3, r4 = t & 7, (t + 1) & 7, (t + 2) & 7, (t + 3) & 7, (t + 4) & 7
        for lane in range(lanes):
            av = a[r3, lane]
            bv = a[r2, lane]
            cv = a[r1, lane]
            ev = e[r3, lane]
            fv = e[r2, lane]
            gv = e[r1, lane]
            big1 = u32(_rotr(ev, 6) ^ _rotr(ev, 11) ^ _rotr(ev, 25))
            ch = u32(gv ^ u32(ev & u32(fv ^ gv)))
            t1 = u32(u32(e[r0, lane] + big1) + u32(ch + k) + w[t, lane])
            big0 = u32(_rotr(av, 2) ^ _rotr(av, 13) ^ _rotr(av, 22))
            maj = u32(u32(av & bv) | u32(cv & u32(av | bv)))
            a[r4, lane] = t1 + big0 + maj
            e[r4, lane] = a[r0, lane] + t1
    for j in range(4):  # after round 63 the ring is back where it started
        for lane in range(lanes):
            state[j, lane] = state[j, lane] + a[3 - j, lane]
            state[4 + j, lane] = state[4 + j, lane] + e[3 - j, lane]


@njit(**KERNEL_JIT)
def _hash_range(lo, hi, buf, offsets, lengths, pieces, codes, fixed, prefix, out):
    """Hash messages lo..hi-1 into out[lo:hi] (hex digits, as many as out has columns).

    A message is the bytes buf[:prefix] (whole 64-byte blocks), then for each piece k an entry g of the
    fragment table buf[offsets[g]:offsets[g] + lengths[g]]: g = pieces[k], or if that is negative,
    codes[i, -1 - pieces[k]]; `fixed` is the sum of the lengths of the constant pieces.
    """
    w = np.empty((64, LANES), np.uint32)
    a = np.empty((8, LANES), np.uint32)
    e = np.empty((8, LANES), np.uint32)
    state = np.empty((8, LANES), np.uint32)
    # The state after the prefix, every message's start.
    midstate = _IV.copy()
    for j in range(8):
        state[j, 0] = midstate[j]
    for b in range(prefix // 64):
        for t in range(16):
            q = 64 * b + 4 * t
            w[t, 0] = (u32(buf[q]) << 24) | (u32(buf[q + 1]) << 16) | (u32(buf[q + 2]) << 8) | u32(buf[q + 3])
        _compress(state, w, a, e, np.int64(1))  # (not a literal 1: one compiled _compress)
    for j in range(8):
        midstate[j] = state[j, 0]

    npieces = len(pieces)
    digits = out.shape[1]
    size = np.empty(CHUNK, np.int64)  # a message's length after the prefix
    order = np.empty(CHUNK, np.int64)  # the chunk's messages by length
    # Each lane's message after the prefix, padded, at lane * stride in `text`; where each of its pieces
    # starts (the last entry: where the padding starts). A constant piece already in its place from the
    # lane's previous message, and the padding of one as long, are not written again.
    words = np.zeros(0, np.uint32)
    text = words.view(np.uint8)
    stride = -1
    placed = np.empty((LANES, npieces + 1), np.int64)
    for clo in range(lo, hi, CHUNK):
        m = min(hi - clo, CHUNK)
        low, high = np.int64(1) << 62, np.int64(0)
        for r in range(m):
            s = fixed
            for col in range(codes.shape[1]):
                s += lengths[codes[clo + r, col]]
            size[r] = s
            low = min(low, s)
            high = max(high, s)
        if high - low > 4 * m:  # (lengths far apart: left in their order, batches of fewer lanes)
            for r in range(m):
                order[r] = r
        else:  # a counting sort by length
            start = np.zeros(high - low + 2, np.int64)
            for r in range(m):
                start[size[r] - low + 1] += 1
            for v in range(1, len(start)):
                start[v] += start[v - 1]
            for r in range(m):
                v = size[r] - low
                order[start[v]] = r
                start[v] += 1
        need = 64 * ((high + 9 + 63) // 64)  # bytes of the longest padded message
        if need != stride or len(text) < min(LANES, m) * need:
            stride = need
            if len(text) < min(LANES, m) * stride:
                words = np.zeros(min(LANES, m) * stride // 4, np.uint32)
                text = words.view(np.uint8)
            placed[:] = -1

        first = 0
        while first < m:  # a batch: up to LANES messages of one block count
            nb = (size[order[first]] + 9 + 63) // 64
            lanes = 1
            while lanes < LANES and first + lanes < m and (size[order[first + lanes]] + 9 + 63) // 64 == nb:
                lanes += 1
            for lane in range(lanes):
                r = order[first + lane]
                i = clo + r
                line = text[lane * stride:(lane + 1) * stride]  # (views: indices from 0 up need no wraparound)
                at = 0
                for k in range(npieces):
                    g = pieces[k]
                    if g < 0:
                        g = codes[i, -1 - g]
                    elif placed[lane, k] == at:
                        at += lengths[g]
                        continue
                    placed[lane, k] = at
                    fragment = buf[offsets[g]:offsets[g] + lengths[g]]
                    into = line[at:at + lengths[g]]
                    for q in range(lengths[g]):
                        into[q] = fragment[q]
                    at += lengths[g]
                if placed[lane, npieces] != at:
                    placed[lane, npieces] = at
                    # Padding: 0x80, zeros, the length in bits (64-bit big-endian) in the last 8 bytes.
                    line[at] = 0x80
                    zeros = line[at + 1:64 * nb - 8]
                    for q in range(len(zeros)):
                        zeros[q] = 0
                    bits = (prefix + at) * 8
                    for q in range(8):
                        line[64 * nb - 8 + q] = (bits >> (56 - 8 * q)) & 0xFF
                for j in range(8):
                    state[j, lane] = midstate[j]
            for b in range(nb):
                for lane in range(lanes):
                    block = words[(lane * stride + 64 * b) // 4:(lane * stride + 64 * b) // 4 + 16]
                    for t in range(16):
                        w[t, lane] = _big_endian(block[t])
                _compress(state, w, a, e, lanes)
            for lane in range(lanes):
                i = clo + order[first + lane]
                for d in range(digits):
                    out[i, d] = _HEX[(state[d // 8, lane] >> (28 - 4 * (d % 8))) & 0xF]
            first += lanes


def _run(args, n):
    """Hash all n messages: a few ranges per CPU, in threads (the kernel releases the GIL)."""
    threads = os.cpu_count() or 1
    parts = max(1, min(4 * threads, n // CHUNK))
    if parts == 1:
        _hash_range(0, n, *args)
        return
    bounds = [n * c // parts for c in range(parts + 1)]
    with ThreadPoolExecutor(min(threads, parts)) as pool:
        list(pool.map(lambda c: _hash_range(bounds[c], bounds[c + 1], *args), range(parts)))


class Packed:
    """A table of fragments packed end to end: `data` (bytes) and each fragment's length (`lengths`), so
    that a table of a million fragments (a long axis of seeds) is two buffers, not a million bytes."""

    def __init__(self, data, lengths):
        self.data = bytes(data)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or (self.lengths < 0).any() or int(self.lengths.sum()) != len(self.data):
            raise ValueError("Packed: lengths must be non-negative and add up to len(data)")

    def __len__(self):
        return self.lengths.size

    def __getitem__(self, i):
        start = int(self.lengths[:i].sum())
        return self.data[start:start + int(self.lengths[i])]

    @classmethod
    def of(cls, fragments):
        """The packed form of a list of bytes."""
        return cls(b"".join(fragments), np.fromiter(map(len, fragments), np.int64, len(fragments)))


def _table(k, table):
    """A piece's table as Packed, checked."""
    if isinstance(table, Packed):
        return table
    if not isinstance(table, (list, tuple)):
        raise ValueError(f"pieces[{k}]: table must be a list of bytes or Packed, not {type(table).__name__}")
    for v, entry in enumerate(table):
        if not isinstance(entry, bytes):
            raise ValueError(f"pieces[{k}]: table[{v}] must be bytes, not {type(entry).__name__}")
    return Packed.of(table)


def _digests(pieces, n, digits):
    """(n, digits) uint8 array of the hex digits of each message's SHA-256."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be a non-negative int, not {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be a non-negative int, not {n}")
    if not isinstance(pieces, (list, tuple)):
        raise ValueError(f"pieces must be a list, not {type(pieces).__name__}")
    # Normalise: runs of constant bytes joined (a one-entry table is constant), tables with their codes.
    parts = []  # bytes, or (Packed, codes)
    for k, piece in enumerate(pieces):
        if isinstance(piece, bytes):
            const = piece
        elif isinstance(piece, tuple) and len(piece) == 2:
            table, codes = piece
            table = _table(k, table)
            codes = np.asarray(codes)
            if codes.ndim != 1 or (codes.size and not np.issubdtype(codes.dtype, np.integer)):
                raise ValueError(f"pieces[{k}]: codes must be a 1-d int array, not {codes.ndim}-d {codes.dtype}")
            if len(codes) != n:
                raise ValueError(f"pieces[{k}]: codes has length {len(codes)}, expected n = {n}")
            if n:
                lowest, highest = int(codes.min()), int(codes.max())
                if lowest < 0 or highest >= len(table):
                    bad = lowest if lowest < 0 else highest
                    raise ValueError(f"pieces[{k}]: code {bad} out of range for a table of {len(table)} entries")
            if len(table) > 1 and n:
                parts.append((table, codes))
                continue
            const = table.data if len(table) and n else b""
        else:
            raise ValueError(f"pieces[{k}] must be bytes or a (table, codes) pair, not {type(piece).__name__}")
        if parts and isinstance(parts[-1], bytes):
            parts[-1] += const
        else:
            parts.append(const)

    # The whole 64-byte blocks of the constant prefix: compressed once, then every message starts there.
    head = b""
    if parts and isinstance(parts[0], bytes):
        cut = len(parts[0]) // 64 * 64
        head, parts[0] = parts[0][:cut], parts[0][cut:]

    # One buffer: the prefix, then the fragments; a piece is an entry (constant) or -1 - its column of codes.
    data, lengths, refs, columns, fixed, count = [head], [], [], [], 0, 0
    for part in parts:
        if isinstance(part, bytes):
            refs.append(count)
            data.append(part)
            lengths.append(np.array([len(part)], dtype=np.int64))
            fixed += len(part)
            count += 1
        else:
            table, codes = part
            refs.append(-1 - len(columns))
            columns.append((count, codes))
            data.append(table.data)
            lengths.append(table.lengths)
            count += len(table)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    offsets = np.full(count, len(head), dtype=np.int64)
    offsets[1:] += np.cumsum(lengths[:-1])
    buf = np.frombuffer(b"".join(data) + b"\0", np.uint8)  # never empty
    codes = np.empty((n, len(columns)), dtype=np.int32 if count < 2 ** 31 else np.int64)
    for col, (base, c) in enumerate(columns):
        np.add(c, base, out=codes[:, col], casting="unsafe")
    out = np.empty((n, digits), dtype=np.uint8)
    if n:
        _run((buf, offsets, lengths, np.array(refs, dtype=np.int64), codes, np.int64(fixed), np.int64(len(head)),
              out), n)
    return out


def hex16_digests(pieces, n):
    """First 16 hex digits of sha256(b"".join(piece_i for each piece)) for each of n messages.

    pieces: a list, in message order, of either
      - bytes: the same bytes in every message, or
      - (table, codes): table a list of bytes (the distinct fragments) or a `Packed` table, codes an int
        array of length n: message i gets table[codes[i]].
    Returns a NumPy array of dtype 'S16' (ASCII lower-case hex), length n.
    """
    return _digests(pieces, n, 16).view("S16").reshape(-1)


def sha256(data):
    """The 32-byte SHA-256 digest of `data` (bytes), computed by the same compiled code."""
    if not isinstance(data, bytes):
        raise ValueError(f"data must be bytes, not {type(data).__name__}")
    return bytes.fromhex(_digests([data], 1, 64)[0].tobytes().decode())

"""sweep.grid.hashing: SHA-256 of many joined messages, bit for bit hashlib's."""
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.grid.hashing import CHUNK, LANES, Packed, hex16_digests, sha256


def messages(pieces, n):
    """The n messages that `pieces` describe, joined in Python."""
    out = [b""] * n
    for piece in pieces:
        if isinstance(piece, bytes):
            out = [m + piece for m in out]
        else:
            table, codes = piece
            out = [m + table[c] for m, c in zip(out, np.asarray(codes).tolist())]
    return out


def expected(pieces, n):
    return np.array([hashlib.sha256(m).hexdigest()[:16].encode() for m in messages(pieces, n)], dtype="S16")


def check(pieces, n):
    got = hex16_digests(pieces, n)
    assert got.dtype == np.dtype("S16") and got.shape == (n,)
    want = expected(pieces, n)
    bad = np.flatnonzero(got != want)
    assert not len(bad), [(i, len(messages(pieces, n)[i]), got[i], want[i]) for i in bad[:5]]


@st.composite
def joined(draw):
    """(pieces, n): a random mix of constant pieces and tables, fragments of 0-200 random bytes."""
    n = draw(st.integers(1, 50))
    fragment = st.binary(max_size=200)
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            pieces.append(draw(fragment))
        else:
            table = draw(st.lists(fragment, min_size=1, max_size=6))
            codes = draw(st.lists(st.integers(0, len(table) - 1), min_size=n, max_size=n))
            pieces.append((table, np.array(codes)))
    return pieces, n


@settings(max_examples=300)
@given(joined())
def test_matches_hashlib_on_random_pieces(case):
    check(*case)


@settings(max_examples=100)
@given(joined())
def test_packed_tables_hash_as_their_lists(case):
    """A table given packed (data and lengths, as a long axis of seeds is) is the list it packs."""
    pieces, n = case
    packed = [p if isinstance(p, bytes) else (Packed.of(p[0]), p[1]) for p in pieces]
    for piece, table in zip(packed, pieces):
        if not isinstance(piece, bytes):
            assert [piece[0][i] for i in range(len(piece[0]))] == list(table[0])
    assert hex16_digests(packed, n).tolist() == expected(pieces, n).tolist()


def test_packed_table_lengths_must_add_up():
    with pytest.raises(ValueError, match="add up to len"):
        Packed(b"abc", [1, 1])


@st.composite
def many(draw):
    """(pieces, n) with more messages than a batch has lanes, few fragments of few lengths: lanes are
    reused by messages of the same layout (constants left in place) and of other layouts."""
    n = draw(st.integers(LANES + 1, 3 * LANES))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    fragment = st.binary(max_size=70)
    pieces = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            pieces.append(draw(fragment))
        else:
            table = draw(st.lists(fragment, min_size=2, max_size=4))
            pieces.append((table, rng.integers(0, len(table), n)))
    return pieces, n


@settings(max_examples=40)
@given(many())
def test_matches_hashlib_when_lanes_are_reused(case):
    check(*case)


@settings(max_examples=100)
@given(st.binary(max_size=5000))
def test_sha256_matches_hashlib(data):
    assert sha256(data) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("lead", [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300])
def test_every_length_around_the_padding_boundaries(lead):
    """Messages of every length from `lead` to lead + 200: a constant part, then a fragment of 0..200 bytes."""
    rng = np.random.default_rng(lead)
    table = [rng.bytes(k) for k in range(201)]
    codes = np.arange(201)
    pieces = ([rng.bytes(lead)] if lead else []) + [(table, codes)]
    check(pieces, 201)
    # The same lengths with the fragments in a shuffled order: batches of mixed block counts.
    check(([rng.bytes(lead)] if lead else []) + [(table, rng.permutation(201))], 201)


def test_long_constant_prefix_midstate():
    """A 300-byte constant prefix (four whole blocks hashed once), two varying fragments, a constant tail,
    over several chunks of messages (so over threads too)."""
    rng = np.random.default_rng(1)
    n = 3 * CHUNK + 17
    pieces = [rng.bytes(300), ([rng.bytes(int(k)) for k in rng.integers(0, 40, 50)], rng.integers(0, 50, n)),
              ([rng.bytes(30) for _ in range(7)], rng.integers(0, 7, n)), rng.bytes(100)]
    check(pieces, n)


def test_chunks_of_other_lengths():
    """A chunk of short messages, then one of long ones (the per-lane buffers grow), then short again;
    lengths far apart within a chunk (left unsorted)."""
    rng = np.random.default_rng(4)
    n = 3 * CHUNK + 5
    lengths = np.r_[np.zeros(CHUNK, int), np.ones(CHUNK, int), rng.integers(0, 2, CHUNK + 5)]
    pieces = [rng.bytes(100), ([rng.bytes(3), rng.bytes(700)], lengths), rng.bytes(7),
              ([rng.bytes(k) for k in range(5)], rng.integers(0, 5, n))]
    check(pieces, n)
    check([([b"", rng.bytes(5000), b"x"], np.arange(30) % 3), rng.bytes(3)], 30)


def test_no_constant_prefix():
    rng = np.random.default_rng(2)
    n = 500
    pieces = [([rng.bytes(int(k)) for k in rng.integers(60, 140, 9)], rng.integers(0, 9, n)), rng.bytes(70),
              ([b"", b"x", rng.bytes(64)], rng.integers(0, 3, n))]
    check(pieces, n)


def test_run_id_like_texts():
    """JSON-like text as sweep.grid.ids writes it: a prefix, varying numbers, a suffix."""
    n = 1000
    rng = np.random.default_rng(3)
    lrs = [b'"lr":%r,' % float(v) for v in rng.random(40)]
    seeds = [b'"seed":%d,' % s for s in range(25)]
    pieces = [b'{"activation":"sigmoid","dataset":"xor",' * 8, (lrs, rng.integers(0, 40, n)),
              b'"momentum":0.9,', (seeds, rng.integers(0, 25, n)), b'"width":2}']
    check(pieces, n)


NIST = [  # FIPS 180-2, appendix B, and the empty message
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@pytest.mark.parametrize("message, digest", NIST, ids=["abc", "448-bit", "896-bit", "empty", "million-a"])
def test_nist_vectors(message, digest):
    assert sha256(message).hex() == digest
    assert hex16_digests([message], 1).tolist() == [digest[:16].encode()]
    # Split into a prefix and a one-entry table, and as a table of one fragment per message.
    half = len(message) // 2
    assert hex16_digests([message[:half], ([message[half:]], [0, 0])], 2).tolist() == [digest[:16].encode()] * 2
    assert hex16_digests([([b"", message], [1, 0])], 2)[0] == digest[:16].encode()


def test_shapes_and_codes():
    assert hex16_digests([], 3).tolist() == [hashlib.sha256(b"").hexdigest()[:16].encode()] * 3
    assert hex16_digests([b"abc", ([b"x", b"y"], [])], 0).shape == (0,)
    table = [b"one", b"two", b""]
    for codes in ([2, 0, 1], (2, 0, 1), np.array([2, 0, 1], np.uint8), np.array([2, 0, 1], np.int16)):
        check([b"p", (table, codes), b"q", (table, codes)], 3)
    assert hex16_digests([(table, [1])], 1) == hex16_digests([b"two"], 1)


@pytest.mark.parametrize("pieces, n, message", [
    ([b"a"], -1, "n must be a non-negative int, not -1"),
    ([b"a"], 2.0, "n must be a non-negative int, not float"),
    ([b"a"], True, "n must be a non-negative int, not bool"),
    (b"abc", 1, "pieces must be a list, not bytes"),
    ([b"a", "b"], 1, r"pieces\[1\] must be bytes or a \(table, codes\) pair, not str"),
    ([bytearray(b"a")], 1, r"pieces\[0\] must be bytes or a \(table, codes\) pair, not bytearray"),
    ([([b"a"], [0], 1)], 1, r"pieces\[0\] must be bytes or a \(table, codes\) pair, not tuple"),
    ([(b"ab", [0])], 1, r"pieces\[0\]: table must be a list of bytes or Packed, not bytes"),
    ([([b"a", "b"], [0])], 1, r"pieces\[0\]: table\[1\] must be bytes, not str"),
    ([([b"a", b"b"], [0, 1])], 3, r"pieces\[0\]: codes has length 2, expected n = 3"),
    ([b"x", ([b"a", b"b"], [0, 2])], 2, r"pieces\[1\]: code 2 out of range for a table of 2 entries"),
    ([([b"a", b"b"], [-1, 0])], 2, r"pieces\[0\]: code -1 out of range for a table of 2 entries"),
    ([([], [0])], 1, r"pieces\[0\]: code 0 out of range for a table of 0 entries"),
    ([([b"a", b"b"], [0.0, 1.0])], 2, r"pieces\[0\]: codes must be a 1-d int array, not 1-d float64"),
    ([([b"a", b"b"], [[0, 1]])], 2, r"pieces\[0\]: codes must be a 1-d int array, not 2-d int64"),
    ([([b"a", b"b"], np.array([True, False]))], 2, r"pieces\[0\]: codes must be a 1-d int array, not 1-d bool"),
])
def test_errors(pieces, n, message):
    with pytest.raises(ValueError, match="^" + message + "$"):
        hex16_digests(pieces, n)


def test_sha256_wants_bytes():
    with pytest.raises(ValueError, match="^data must be bytes, not str$"):
        sha256("abc")

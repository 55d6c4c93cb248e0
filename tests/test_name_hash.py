"""The dictionary's 64-bit name hash: no collision among structured ids, even spread."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from ember.partitioning.dictionary import EntityDictionary, hash_strings


def _distinct(names) -> bool:
    h = hash_strings(pa.array(names))
    return len(np.unique(h)) == len(names)


def test_wordnet_style_ids_that_collided_before_do_not():
    # these two collided in the old 16-byte fast path (differing in two characters)
    h = hash_strings(pa.array(["ENG30-01925372-a", "ENG30-00925372-v"]))
    assert h[0] != h[1]


@pytest.mark.parametrize(
    "fmt",
    [
        "{:d}",
        "{:09d}",
        "ENG30-{:08d}-n",
        "Q{:d}",
        "http://example.org/entity/{:012d}#it",
        "{:07d}\x00",
        "user_{:x}_v2",
    ],
)
def test_a_million_zero_padded_counters_with_prefixes_and_suffixes_do_not_collide(fmt):
    assert _distinct([fmt.format(i) for i in range(1_000_000)])


def test_every_one_and_two_character_variation_of_some_ids_is_distinct():
    alphabet = "0a9zA-_.\x00é"
    for base in ["ENG30-01925372-a", "n02084071", "x" * 23, "q", "http://ex.org/e/12345678901234567"]:
        variants = {base}
        for i in range(len(base)):
            for c in alphabet:
                variants.add(base[:i] + c + base[i + 1 :])
        for i, j in itertools.combinations(range(len(base)), 2):
            for c, d in itertools.product(alphabet[:6], repeat=2):
                variants.add(base[:i] + c + base[i + 1 : j] + d + base[j + 1 :])
        variants |= {base + c for c in alphabet} | {base[:-1]}
        assert _distinct(sorted(variants)), base


@pytest.mark.parametrize("fmt", ["{:d}", "ENG30-{:08d}-n", "e{:030d}"])
def test_the_high_bits_that_pick_a_slot_are_evenly_spread(fmt):
    # the hash table takes a slot from the top bits: every bucket about equally full
    n, buckets = 400_000, 1024
    h = hash_strings(pa.array([fmt.format(i) for i in range(n)]))
    counts = np.bincount((h >> np.uint64(54)).astype(np.int64), minlength=buckets)
    expected = n / buckets
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 1023 degrees of freedom: mean 1023, sd ~45; 1250 is beyond five sd
    assert chi2 < 1250
    low = np.bincount((h & np.uint64(buckets - 1)).astype(np.int64), minlength=buckets)
    assert float(((low - expected) ** 2 / expected).sum()) < 1250


def test_each_input_bit_flips_about_half_the_output_bits():
    rng = np.random.default_rng(0)
    base = ["".join(rng.choice(list("abcdef0123"), size=k)) for k in rng.integers(1, 40, 300)]
    flips = []
    for s in base:
        b = s.encode()
        for i in range(len(b)):
            t = bytearray(b)
            t[i] ^= 1 << int(rng.integers(0, 7))
            try:
                other = t.decode()
            except UnicodeDecodeError:
                continue
            a, c = hash_strings(pa.array([s, other]))
            flips.append(bin(int(a) ^ int(c)).count("1"))
    assert 31 < np.mean(flips) < 33 and min(flips) > 10


def test_a_dictionary_rebuilt_from_names_with_a_shared_hash_keeps_them_apart(monkeypatch):
    import ember.partitioning.dictionary as dictionary

    real = dictionary.hash_strings
    monkeypatch.setattr(dictionary, "hash_strings", lambda a: np.full(len(a), 7, np.uint64) ^ (real(a) & 1))
    names = pa.array([f"n{i}" for i in range(50)])
    d = EntityDictionary("all", 2, 0, names)  # every name under one of two hashes
    assert d.lookup(pa.array(["n3", "n49", "n0", "nope"])).tolist() == [3, 49, 0, -1]
    assert d.encode(pa.array(["new", "n7", "new2", "new"])).tolist() == [50, 7, 51, 50]
    with pytest.raises(ValueError, match="repeated names"):
        EntityDictionary("all", 2, 0, pa.array(["a", "b", "a"]))

"""The import's compiled kernels: a TSV splitter, and the name encoder (hash, probe and
insert fused in one C++ loop), the bucket routing and the count of repeated edges.

``EntityDictionary`` keeps its names in an open-addressing table of their 64-bit hashes
(see ``dictionary``). The numpy path gets there in several whole-array passes: pyarrow's
``dictionary_encode`` of the block (its own hash table), the hash of each distinct name,
the probe, the insert of the unseen ones, a verification of the names found. This
kernel does all of it in one pass over the rows of a block, on the very same table
arrays, with the very same hash (``hash_strings``): each row's name is hashed, looked up,
compared byte for byte with the name stored under the id it found (so a hash collision
is never a silent merge), and appended when unseen. It returns what the numpy path
returns: the block's distinct ids in order of first appearance and each row's index
into them, so the two paths give the same ids and can even take turns on one
dictionary. The splitter (``split_tsv``) turns a piece of plain TSV lines into the very
columns pyarrow's parse gives (and declines any other piece, which pyarrow then parses:
``readers._iter_tsv``).

It is built on first use with ``ember.utils.cpp_extension`` (pybind11 and a C++
compiler; about 10 s, once: the build is cached). ``kernel(input_bytes)`` decides:

* ``EMBER_IMPORT_KERNEL=numpy``: never (the numpy path);
* ``EMBER_IMPORT_KERNEL=cpp``: always, building it if needed (an error if it cannot);
* unset or ``auto``: the cached build if there is one; else build it when the input
  is large enough for the build to pay for itself (``BUILD_BYTES``); else, and where
  there is no compiler or no pybind11, the numpy path (with a one-line note when the
  input is large, since the import then takes about twice the CPU time).
"""

from __future__ import annotations

import os
import sys

# ~2.5e7 edges: from here one import's saving (about 2 CPU-s per 100 MiB of input against
# the numpy path, benchmarks/import.py) pays for the build (about 11 s, once)
BUILD_BYTES = 512 << 20
_ENV = "EMBER_IMPORT_KERNEL"
_NAME = "ember_import_kernel"

SOURCE = r"""
#include <algorithm>
#include <cstring>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the name hash reads names as little-endian 8-byte words"
#endif

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;  // no forcecast: a wrong dtype is an error, not a copy

namespace {

constexpr uint64_t GAMMA = 0x9E3779B97F4A7C15ULL;  // ember._bits.GAMMA
constexpr uint64_t SEED = 0x243F6A8885A308D3ULL;   // dictionary._SEED
constexpr uint64_t C1 = 0xBF58476D1CE4E5B9ULL, C2 = 0x94D049BB133111EBULL;

inline uint64_t mix(uint64_t z) {  // splitmix64's finalizer (ember._bits.mix64)
    z ^= z >> 30;
    z *= C1;
    z ^= z >> 27;
    z *= C2;
    return z ^ (z >> 31);
}

// The first min(m, 8) bytes at p as a little-endian word, zero above (m <= 0: 0): the
// numpy path's unaligned word masked to the string's length. Reads nothing past `end`.
inline uint64_t word(const uint8_t* p, int64_t m, const uint8_t* end) {
    if (m <= 0) return 0;
    uint64_t w = 0;
    if (p + 8 <= end) {
        std::memcpy(&w, p, 8);
        if (m < 8) w &= (uint64_t(1) << (8 * m)) - 1;
    } else {
        std::memcpy(&w, p, size_t(m < 8 ? m : 8));
    }
    return w;
}

// dictionary.hash_strings of one name of L bytes at p
inline uint64_t hash_name(const uint8_t* p, int64_t L, const uint8_t* end) {
    uint64_t h = (uint64_t(L) * GAMMA) ^ SEED;
    h = mix(h ^ word(p, L, end));
    h = mix(h ^ (L > 8 ? word(p + 8, L - 8, end) : 0));
    if (L > 16) {  // _hash_long: words 2.. mixed with a key of their position, summed
        uint64_t s = 0;
        const int64_t nw = (L + 7) / 8;
        for (int64_t k = 2; k < nw; ++k)
            s += mix(word(p + 8 * k, L - 8 * k, end) ^ mix((uint64_t(k) * GAMMA) ^ SEED));
        h = mix(h ^ s);
    }
    return h;
}

struct Strings {  // Arrow string arrays (int32 offsets), one after another
    std::vector<const int32_t*> offs;
    std::vector<const uint8_t*> data, end;
    std::vector<int64_t> start;  // first row of each (and the total at the back)

    explicit Strings(const py::list& chunks) {
        start.push_back(0);
        for (auto item : chunks) {
            auto t = item.cast<py::tuple>();
            auto o = t[0].cast<Arr<int32_t>>();
            auto d = t[1].cast<Arr<uint8_t>>();
            if (o.ndim() != 1 || o.size() < 1)
                throw std::invalid_argument("offsets: want a 1-d array of n + 1");
            offs.push_back(o.data());
            data.push_back(d.data());
            end.push_back(d.data() + d.size());
            start.push_back(start.back() + o.size() - 1);
            keep.push_back(o);
            keep.push_back(d);
        }
    }
    int64_t size() const { return start.back(); }
    size_t chunk_of(int64_t row) const {  // few chunks: a scan from the back
        size_t c = offs.size() - 1;
        while (start[c] > row) --c;
        return c;
    }
    void prefetch_offset(int64_t row) const {
        size_t c = chunk_of(row);
        __builtin_prefetch(offs[c] + (row - start[c]));
    }
    void get(int64_t row, const uint8_t*& p, int64_t& len) const {
        size_t c = chunk_of(row);
        int64_t r = row - start[c];
        p = data[c] + offs[c][r];
        len = offs[c][r + 1] - offs[c][r];
    }
    void get(int64_t row, const uint8_t*& p, int64_t& len, const uint8_t*& e) const {
        size_t c = chunk_of(row);
        int64_t r = row - start[c];
        p = data[c] + offs[c][r];
        len = offs[c][r + 1] - offs[c][r];
        e = end[c];
    }

  private:
    std::vector<py::object> keep;
};

// Whether the L bytes at a (in a buffer ending at ae) and at b (ending at be) are equal:
// names of up to 16 bytes as two words, inline (most names; no call per row)
inline bool same_bytes(const uint8_t* a, const uint8_t* ae, const uint8_t* b, const uint8_t* be, int64_t L) {
    if (L > 16) return std::memcmp(a, b, size_t(L)) == 0;
    return word(a, L, ae) == word(b, L, be) && (L <= 8 || word(a + 8, L - 8, ae) == word(b + 8, L - 8, be));
}

template <typename T>
T* writable(Arr<T>& a, const char* what) {
    if (!a.writeable()) throw std::invalid_argument(std::string(what) + ": not writeable");
    return a.mutable_data();
}

}  // namespace

// Encode rows `row`.. of the block `chunks` (its lhs chunks, then its rhs chunks).
// Returns (status, row, n, k): status 0 when every row is done; 1 when the row at `row`
// needs a new id but `n` reached `limit` (grow the table and `lidx`, then call again);
// 2 when the row's hash is stored under another name (a 64-bit collision: the caller
// resolves that row by name and calls again from row + 1).
//   tab_h, tab_id: the dictionary's table (0 = empty slot), updated in place
//   stored: the dictionary's names of ids 0 .. n0 - 1, as chunks
//   n0: the dictionary's size before this block; ids from n0 on are new in the block,
//       and new_rows[id - n0] is the block row of their first appearance
//   lidx: per id, its index among the block's distinct ids (-1: not seen in the block);
//   uids[:k]: those ids in order of first appearance; local[row]: each row's index
py::tuple encode_rows(py::list chunks, int64_t row, int64_t n, int64_t k, int64_t limit,
                      Arr<uint64_t> tab_h,
                      Arr<int32_t> tab_id, py::list stored, int64_t n0,
                      Arr<int64_t> new_rows,
                      Arr<int32_t> lidx,
                      Arr<int64_t> uids,
                      Arr<int32_t> local, uint64_t mask) {
    Strings block(chunks), names(stored);
    const int64_t rows = block.size();
    const int64_t cap = tab_h.size();
    if (cap < 16 || (cap & (cap - 1)) || tab_id.size() != cap)
        throw std::invalid_argument("encode_rows: bad table capacity");
    if (names.size() != n0 || n < n0 || n > limit || limit > lidx.size() || limit > cap / 2)
        throw std::invalid_argument("encode_rows: inconsistent sizes");
    if (new_rows.size() < rows || uids.size() < rows || local.size() < rows)
        throw std::invalid_argument("encode_rows: output arrays too small");
    uint64_t* th = writable(tab_h, "tab_h");
    int32_t* tid = writable(tab_id, "tab_id");
    int64_t* nr = writable(new_rows, "new_rows");
    int32_t* li = writable(lidx, "lidx");
    int64_t* ui = writable(uids, "uids");
    int32_t* lo = writable(local, "local");
    int bits = 0;
    while ((int64_t(1) << bits) < cap) ++bits;
    const int shift = 64 - bits;
    const uint64_t slot_mask = uint64_t(cap) - 1;
    // Rows go in batches, in four passes: hash and prefetch the slots; probe (without
    // inserting) and prefetch what a found id leads to; prefetch the stored names; then,
    // in row order, verify, insert the unseen (probing again: a row before may have
    // inserted the same name) and number the block's distinct ids. The table and the
    // names are far larger than the caches: a row costs a few memory round trips, and
    // the passes keep a batch's round trips in flight together instead of one by one.
    constexpr int B = 64;
    const uint8_t* bp[B];
    const uint8_t* sp[B];
    const uint8_t* se[B];
    int64_t bl[B], sl[B], bid[B];
    uint64_t bh[B], bs[B];
    int status = 0;
    {
        py::gil_scoped_release nogil;
        size_t c = block.chunk_of(row);
        while (row < rows && !status) {
            while (block.start[c + 1] <= row) ++c;
            const int32_t* offs = block.offs[c];
            const uint8_t* data = block.data[c];
            const uint8_t* end = block.end[c];
            const int64_t base = block.start[c];
            const int nb = int(std::min<int64_t>(B, block.start[c + 1] - row));
            for (int j = 0; j < nb; ++j) {
                const int64_t i = row + j - base;
                const uint8_t* p = data + offs[i];
                const int64_t L = offs[i + 1] - offs[i];
                uint64_t h = hash_name(p, L, end) & mask;
                if (h == 0) h = 1;  // 0 marks an empty slot (dictionary._nonzero)
                bp[j] = p;
                bl[j] = L;
                bh[j] = h;
                bs[j] = h >> shift;
                __builtin_prefetch(th + bs[j]);
                __builtin_prefetch(tid + bs[j]);
            }
            for (int j = 0; j < nb; ++j) {
                uint64_t s = bs[j];
                int64_t id = -1;
                for (;;) {  // linear probing, as dictionary._probe
                    const uint64_t t = th[s];
                    if (t == bh[j]) { id = tid[s]; break; }
                    if (t == 0) break;
                    s = (s + 1) & slot_mask;
                }
                bid[j] = id;
                bs[j] = s;
                if (id >= 0) {
                    __builtin_prefetch(li + id);
                    if (id < n0) names.prefetch_offset(id);
                }
            }
            for (int j = 0; j < nb; ++j) {
                const int64_t id = bid[j];
                if (id >= 0) {
                    if (id < n0) names.get(id, sp[j], sl[j], se[j]);
                    else block.get(nr[id - n0], sp[j], sl[j], se[j]);
                    __builtin_prefetch(sp[j]);
                }
            }
            for (int j = 0; j < nb; ++j, ++row) {
                int64_t id = bid[j];
                if (id >= 0) {  // found by its hash: the same name?
                    if (sl[j] != bl[j] || !same_bytes(bp[j], end, sp[j], se[j], bl[j])) {
                        status = 2;
                        break;
                    }
                } else {
                    uint64_t s = bs[j];
                    for (;;) {  // again: rows before in the batch may have filled slots
                        const uint64_t t = th[s];
                        if (t == bh[j]) { id = tid[s]; break; }
                        if (t == 0) break;
                        s = (s + 1) & slot_mask;
                    }
                    if (id >= 0) {  // inserted by a row before: verify against that row
                        const uint8_t *q, *qe;
                        int64_t M;
                        block.get(nr[id - n0], q, M, qe);
                        if (M != bl[j] || !same_bytes(bp[j], end, q, qe, M)) {
                            status = 2;
                            break;
                        }
                    } else {
                        if (n >= limit) { status = 1; break; }
                        id = n++;
                        th[s] = bh[j];
                        tid[s] = int32_t(id);
                        nr[id - n0] = row;
                    }
                }
                int32_t l = li[id];
                if (l < 0) {
                    l = int32_t(k);
                    li[id] = l;
                    ui[k++] = id;
                }
                lo[row] = l;
            }
        }
    }
    return py::make_tuple(status, row, n, k);
}

// How many entries of `key` (each in [0, 2^63)) repeat an earlier one: an LSD radix sort
// (11-bit digits, as many as the largest key needs; a digit all keys share is skipped),
// then a count of equal neighbours. Linear in the keys (numpy's sort is not) and with
// one scratch copy of them. `key` is scratch: it is left permuted.
int64_t count_repeats(Arr<int64_t> key) {
    const int64_t n = key.size();
    if (n < 2) return 0;
    uint64_t* a = reinterpret_cast<uint64_t*>(writable(key, "key"));
    std::vector<uint64_t> tmp(size_t(n), 0);
    int64_t repeats = 0;
    {
        py::gil_scoped_release nogil;
        constexpr int D = 11;
        constexpr uint64_t M = (uint64_t(1) << D) - 1;
        uint64_t any = 0;
        for (int64_t i = 0; i < n; ++i) any |= a[i];
        int bits = 0;
        while (bits < 64 && (any >> bits)) ++bits;
        const int passes = (bits + D - 1) / D;
        std::vector<int64_t> hist(size_t(passes) << D, 0);
        for (int64_t i = 0; i < n; ++i)
            for (int p = 0; p < passes; ++p) ++hist[(size_t(p) << D) + ((a[i] >> (D * p)) & M)];
        uint64_t *src = a, *dst = tmp.data();
        for (int p = 0; p < passes; ++p) {
            int64_t* h = hist.data() + (size_t(p) << D);
            if (h[a[0] >> (D * p) & M] == n) continue;  // one digit for all: already in order
            int64_t sum = 0;
            for (uint64_t d = 0; d <= M; ++d) {
                const int64_t c = h[d];
                h[d] = sum;
                sum += c;
            }
            for (int64_t i = 0; i < n; ++i) dst[h[(src[i] >> (D * p)) & M]++] = src[i];
            std::swap(src, dst);
        }
        for (int64_t i = 1; i < n; ++i) repeats += src[i] == src[i - 1];
    }
    return repeats;
}

// The import's routing of one block of edges (one entity type, both sides whole): each
// row's partitions and offsets gathered from the per-name arrays (il, ir: each row's
// index into them), its bucket lpart * P + rpart, and the columns (lhs offset, rhs
// offset, relation, split) grouped by bucket in input order (a counting sort: what a
// stable argsort by bucket and four gathers give, in two passes). Returns (bounds: each
// bucket's first row and the total at the end, lhs, rhs, rel, split, self-loops).
py::tuple route_rows(Arr<int32_t> il, Arr<int32_t> ir,
                     Arr<int32_t> lpart,
                     Arr<int32_t> loff,
                     Arr<int32_t> rpart,
                     Arr<int32_t> roff, Arr<int64_t> rel,
                     Arr<int8_t> split, int64_t P) {
    const int64_t n = il.size(), nl = lpart.size(), nr = rpart.size();
    if (ir.size() != n || rel.size() != n || (split.size() != 0 && split.size() != n) || loff.size() != nl ||
        roff.size() != nr || P < 1 || P > 65535)
        throw std::invalid_argument("route_rows: inconsistent sizes");
    const int64_t nb = P * P;
    py::array_t<int64_t> bounds(nb + 1);
    py::array_t<int32_t> lo(n), ro(n), re(n);
    py::array_t<int8_t> sp(split.size());
    const int32_t *a = il.data(), *b = ir.data(), *lp = lpart.data(), *lf = loff.data(), *rp = rpart.data(),
                  *rf = roff.data();
    const int64_t* rl = rel.data();
    const int8_t* si = split.size() ? split.data() : nullptr;
    int64_t* bd = bounds.mutable_data();
    int32_t *o1 = lo.mutable_data(), *o2 = ro.mutable_data(), *o3 = re.mutable_data();
    int8_t* o4 = split.size() ? sp.mutable_data() : nullptr;
    int64_t loops = 0;
    bool bad = false;
    {
        py::gil_scoped_release nogil;
        std::vector<int32_t> key(static_cast<size_t>(n));
        std::vector<int64_t> pos(size_t(nb) + 1, 0);
        for (int64_t r = 0; r < n; ++r) {
            const int32_t x = a[r], y = b[r];
            if (x < 0 || x >= nl || y < 0 || y >= nr) { bad = true; break; }
            const int32_t px = lp[x], py_ = rp[y];
            if (px < 0 || px >= P || py_ < 0 || py_ >= P) { bad = true; break; }
            const int32_t k = int32_t(px * P + py_);
            key[size_t(r)] = k;
            ++pos[size_t(k) + 1];
            loops += (px == py_) & (lf[x] == rf[y]);
        }
        if (!bad) {
            for (int64_t k = 0; k < nb; ++k) pos[size_t(k) + 1] += pos[size_t(k)];
            for (int64_t k = 0; k <= nb; ++k) bd[k] = pos[size_t(k)];
            for (int64_t r = 0; r < n; ++r) {
                const int64_t q = pos[size_t(key[size_t(r)])]++;
                o1[q] = lf[a[r]];
                o2[q] = rf[b[r]];
                o3[q] = int32_t(rl[r]);
                if (o4) o4[q] = si[r];
            }
        }
    }
    if (bad) throw std::invalid_argument("route_rows: an index or a partition out of range");
    return py::make_tuple(bounds, lo, ro, re, sp, loops);
}

// Whether the n bytes at s are valid UTF-8 (no overlong forms, no surrogates, nothing
// above U+10FFFF): what pyarrow's cast from binary to string accepts
inline bool valid_utf8(const uint8_t* s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        if (c < 0x80) { ++i; continue; }
        int k;
        uint8_t lo = 0x80, hi = 0xBF;  // the range of the first continuation byte
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return false;
        if (i + k >= n) return false;  // cut short
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (int j = 2; j <= k; ++j)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

// Split `chunk`, whole lines of a TSV file (each ending in "\n" or "\r\n"; the last may
// end the chunk without one), into the fields `want` (indices among `ncols`), each as
// the buffers of an Arrow string array: (int32 offsets, bytes, bytes used). Returns None
// where a line is not plain (blank, a comment, another number of fields, an empty wanted
// field, a lone '\r', a wanted field that is not valid UTF-8): the caller then parses
// the chunk with pyarrow, whose rules for such lines (skip, reject, or an error naming
// the line) apply. A plain chunk's columns are exactly what pyarrow's parse gives.
py::object split_tsv(py::buffer chunk, int64_t ncols, Arr<int64_t> want_) {
    py::buffer_info info = chunk.request();
    const uint8_t* p = static_cast<const uint8_t*>(info.ptr);
    const int64_t n = info.size * info.itemsize;
    const int64_t nw = want_.size();
    const int64_t* want = want_.data();
    if (ncols < 1 || ncols > 64 || nw < 1 || n > (int64_t(1) << 31) - 1)
        throw std::invalid_argument("split_tsv: bad sizes");
    std::vector<int> slot(size_t(ncols), -1);  // field -> its output, or -1
    for (int64_t j = 0; j < nw; ++j) {
        if (want[j] < 0 || want[j] >= ncols || slot[size_t(want[j])] >= 0)
            throw std::invalid_argument("split_tsv: bad column");
        slot[size_t(want[j])] = int(j);
    }
    int64_t rows = std::count(p, p + n, '\n');
    if (n && p[n - 1] != '\n') ++rows;
    std::vector<py::array_t<int32_t>> offs;
    std::vector<py::array_t<uint8_t>> data;
    std::vector<int32_t*> o;
    std::vector<uint8_t*> d;
    for (int64_t j = 0; j < nw; ++j) {  // bytes: room for the whole chunk, touched as used
        offs.emplace_back(rows + 1);
        data.emplace_back(n + 8);
        o.push_back(offs.back().mutable_data());
        d.push_back(data.back().mutable_data());
        o.back()[0] = 0;
    }
    std::vector<int32_t> used(size_t(nw), 0);
    bool plain = true;
    {
        py::gil_scoped_release nogil;
        constexpr uint64_t ONES = 0x0101010101010101ULL, HIGH = 0x8080808080808080ULL;
        // bytes of w equal to a TAB, a '\n' or a '\r' (the lowest flag is exact: a false
        // flag can only sit above a true one)
        auto special = [](uint64_t w) {
            auto zero = [](uint64_t v) { return (v - ONES) & ~v & HIGH; };
            return zero(w ^ (ONES * '\t')) | zero(w ^ (ONES * '\n')) | zero(w ^ (ONES * '\r'));
        };
        const uint8_t* q = p;
        const uint8_t* const end = p + n;
        for (int64_t r = 0; r < rows && plain; ++r) {
            if (q == end || *q == '\n' || *q == '#' || *q == '\r') { plain = false; break; }
            int64_t f = 0;
            for (;;) {
                const uint8_t* s = q;
                uint64_t high = 0;  // bytes >= 0x80 in the field
                for (;;) {  // to the field's end, eight bytes at a time
                    if (q + 8 <= end) {
                        uint64_t w;
                        std::memcpy(&w, q, 8);
                        const uint64_t m = special(w);
                        if (m) {
                            const int i = __builtin_ctzll(m) >> 3;
                            high |= w & ((uint64_t(1) << (8 * i)) - 1) & HIGH;
                            q += i;
                            break;
                        }
                        high |= w & HIGH;
                        q += 8;
                    } else {
                        while (q < end && *q != '\t' && *q != '\n' && *q != '\r') high |= *q++ & 0x80;
                        break;
                    }
                }
                const uint8_t c = q < end ? *q : uint8_t('\n');
                const uint8_t* e = q;
                if (c == '\r') {  // only as "\r\n"
                    if (q + 1 >= end || q[1] != '\n') { plain = false; break; }
                    ++q;
                }
                if (f >= ncols) { plain = false; break; }
                const int k = slot[size_t(f)];
                if (k >= 0) {
                    const int64_t L = e - s;
                    if (L == 0 || (high && !valid_utf8(s, L))) { plain = false; break; }
                    uint8_t* dst = d[size_t(k)] + used[size_t(k)];
                    if (s + L + 8 <= end) {  // whole words (the output has 8 spare bytes)
                        for (int64_t x = 0; x < L; x += 8) {
                            uint64_t w;
                            std::memcpy(&w, s + x, 8);
                            std::memcpy(dst + x, &w, 8);
                        }
                    } else {
                        std::memcpy(dst, s, size_t(L));
                    }
                    used[size_t(k)] += int32_t(L);
                    o[size_t(k)][r + 1] = used[size_t(k)];
                }
                ++f;
                ++q;
                if (c != '\t') {
                    if (f != ncols) plain = false;
                    break;
                }
            }
        }
    }
    if (!plain) return py::none();
    py::list cols;
    for (int64_t j = 0; j < nw; ++j)
        cols.append(py::make_tuple(offs[size_t(j)], data[size_t(j)], used[size_t(j)]));
    return py::make_tuple(rows, cols);
}

// cnt[uids[j]] += c[j] (and tcnt[uids[j]] += tc[j], where tc is given: not empty) for
// distinct uids: the per-id counts of a block's names, added at ids spread over the whole
// dictionary, with the next ids' rows prefetched (numpy's fancy += gathers, adds and
// scatters in three passes, each waiting on memory)
void add_at(Arr<int64_t> cnt, Arr<int64_t> tcnt, Arr<int64_t> uids, Arr<int64_t> c, Arr<int64_t> tc) {
    const int64_t k = uids.size(), n = cnt.size();
    const bool train = tc.size() != 0;
    if (c.size() != k || (train && tc.size() != k) || tcnt.size() != n)
        throw std::invalid_argument("add_at: inconsistent sizes");
    const int64_t* u = uids.data();
    for (int64_t j = 0; j < k; ++j)
        if (u[j] < 0 || u[j] >= n) throw std::invalid_argument("add_at: an id out of range");
    int64_t* C = writable(cnt, "cnt");
    int64_t* T = writable(tcnt, "tcnt");
    const int64_t* a = c.data();
    const int64_t* b = train ? tc.data() : nullptr;
    py::gil_scoped_release nogil;
    constexpr int64_t D = 16;  // prefetch distance, in ids
    for (int64_t j = 0; j < k; ++j) {
        if (j + D < k) {
            __builtin_prefetch(C + u[j + D], 1);
            if (b) __builtin_prefetch(T + u[j + D], 1);
        }
        C[u[j]] += a[j];
        if (b) T[u[j]] += b[j];
    }
}

// dictionary.hash_strings (before the 0 -> 1 of the table keys) of rows of `chunks`
py::array_t<uint64_t> hash_rows(py::list chunks) {
    Strings s(chunks);
    py::array_t<uint64_t> out(s.size());
    uint64_t* h = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        for (size_t c = 0; c + 1 < s.start.size(); ++c)
            for (int64_t r = s.start[c]; r < s.start[c + 1]; ++r) {
                const int64_t i = r - s.start[c];
                const int32_t o = s.offs[c][i];
                h[r] = hash_name(s.data[c] + o, s.offs[c][i + 1] - o, s.end[c]);
            }
    }
    return out;
}
"""

_cached: dict = {}


def _load(build: bool):
    from ember.utils.cpp_extension import load_inline

    functions = ["encode_rows", "hash_rows", "count_repeats", "route_rows", "split_tsv", "add_at"]
    return load_inline(_NAME, SOURCE, functions=functions, build=build)


def kernel(input_bytes: int = 0):
    """The compiled module, or None where the numpy path is to be used (see above)."""
    mode = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "cpp", "numpy"):
        from ember.errors import UserError

        raise UserError(f"{_ENV}={mode!r}: choose auto, cpp or numpy")
    if mode == "numpy":
        return None
    from ember.utils.cpp_extension import CppExtensionError

    if mode == "cpp":
        try:
            return _memo(True)
        except CppExtensionError as e:
            from ember.errors import UserError

            raise UserError(f"{_ENV}=cpp: the import's kernel cannot be built: {e}") from None
    try:
        return _memo(False)
    except CppExtensionError:
        pass
    if input_bytes < BUILD_BYTES:
        return None
    try:
        print(
            "note: building the import's C++ kernel (once, about 10 s; cached for later imports)",
            file=sys.stderr,
        )
        return _memo(True)
    except CppExtensionError as e:
        why = str(e).splitlines()[0]
        print(f"note: importing without the C++ kernel, about twice the CPU time ({why})", file=sys.stderr)
        return None


def _memo(build: bool):
    if "mod" not in _cached:
        _cached["mod"] = _load(build)
    return _cached["mod"]

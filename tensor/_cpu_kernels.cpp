// Compiled CPU kernels of the graph trainer's hot path (see _cpu_kernels.py for why and
// for their numpy twins, which the tests hold them equal to).
//
// Every kernel works on float32, C-contiguous arrays in place, checks shapes and bounds
// while it holds the GIL, and releases it for the arithmetic, so that other Hogwild
// workers' numpy products run meanwhile. The arithmetic is written to round as numpy's
// does (float32 products and quotients, numpy's pairwise sum for row reductions) and is
// compiled with -ffp-contract=off: no fused multiply-adds change the rounding.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define EMBER_CLMUL 1
#endif

// x86-64 builds for the baseline ISA (SSE2), which cannot compare 64-bit ids in vector
// registers; GCC's function clones add an AVX2 version chosen at load time where the CPU
// has it (the softmax mask pass measured 0.10 -> 0.07 ms). Rounding is the same in both:
// no fused multiply-adds, no reassociation.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EMBER_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EMBER_CLONES
#endif

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;  // no forcecast: a wrong dtype is an error

// numpy's pairwise summation (FLOAT_pairwise_sum, unit stride) of R rows at once, in its
// unrolled base case (rows of 8 to 128 floats; with `Square`, of x * x): eight partial
// sums a row, combined as a tree, then the tail. One row's sum is a chain of n/8
// dependent adds that waits on the adder's latency; R rows are R independent chains.
// Inlined into each caller's clone: with AVX2 a row's 8 partial sums are one register.
template <int R, bool Square>
inline void pairwise_base(const float* const* a, int64_t n, float* out) {
    float r[R][8];
    for (int q = 0; q < R; ++q)
        for (int j = 0; j < 8; ++j) r[q][j] = Square ? a[q][j] * a[q][j] : a[q][j];
    const int64_t end = n - (n % 8);
    for (int64_t i = 8; i < end; i += 8)
        for (int q = 0; q < R; ++q)
            for (int j = 0; j < 8; ++j) r[q][j] += Square ? a[q][i + j] * a[q][i + j] : a[q][i + j];
    for (int q = 0; q < R; ++q) {
        float res = ((r[q][0] + r[q][1]) + (r[q][2] + r[q][3])) + ((r[q][4] + r[q][5]) + (r[q][6] + r[q][7]));
        for (int64_t i = end; i < n; ++i) res += Square ? a[q][i] * a[q][i] : a[q][i];
        out[q] = res;
    }
}

// numpy's pairwise summation of one row, any length: the order in which
// `x.sum(axis=-1)` adds a row, so that the row means below round as numpy's do.
float pairwise_sum(const float* a, int64_t n) {
    if (n < 8) {
        float res = 0.f;
        for (int64_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        float res;
        pairwise_base<1, false>(&a, n, &res);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// Row-wise Adagrad on the rows `idx` (repeats allowed) of `w` (N, d) and its per-row
// accumulator `s` (N,), from the gradient rows `g` (n, d):
//
//   G[r] = sum of g[i] over i with idx[i] == r     (in order of i, from zero: the CSR
//                                                   product's order, so the same sums)
//   s[r] += mean(G[r]^2);  w[r] -= clr G[r] / (sqrt(s[r]) + eps)
//
// The coalesce is an open-addressing hash of the row ids (first occurrence order) with a
// linked list of each row's positions: no sort, no (rows, d) copy of rows seen once.
EMBER_CLONES void row_adagrad_rows(carray<float> w, carray<float> s, carray<int64_t> idx, carray<float> g, double clr,
                      double eps, bool maximize) {
    if (w.ndim() != 2 || s.ndim() != 1 || idx.ndim() != 1 || g.ndim() != 2)
        throw std::invalid_argument("row_adagrad_rows: expected w (N, d), s (N,), idx (n,), g (n, d)");
    const int64_t N = w.shape(0), d = w.shape(1), n = idx.shape(0);
    if (s.shape(0) != N || g.shape(0) != n || g.shape(1) != d)
        throw std::invalid_argument("row_adagrad_rows: shapes of w, s, idx and g do not match");
    if (n >= (int64_t{1} << 31)) throw std::invalid_argument("row_adagrad_rows: more than 2^31 rows");
    const int64_t* I = idx.data();
    for (int64_t i = 0; i < n; ++i)
        if (I[i] < 0 || I[i] >= N)
            throw py::index_error("row_adagrad_rows: row " + std::to_string(I[i]) + " is out of range for " +
                                  std::to_string(N) + " rows");
    float* W = w.mutable_data();
    float* S = s.mutable_data();
    const float* G = g.data();
    const float fclr = static_cast<float>(clr), feps = static_cast<float>(eps);
    const float fd = static_cast<float>(d), sign = maximize ? -1.f : 1.f;
    py::gil_scoped_release nogil;

    int64_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    const int shift = 64 - __builtin_ctzll(static_cast<uint64_t>(cap));
    std::vector<int64_t> key(cap, -1);
    std::vector<int32_t> slot(cap), head, tail, next(n, -1);
    head.reserve(n);
    tail.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
        uint64_t h = (static_cast<uint64_t>(I[i]) * 0x9E3779B97F4A7C15ull) >> shift;
        while (key[h] != -1 && key[h] != I[i]) h = (h + 1) & (cap - 1);
        if (key[h] == -1) {
            key[h] = I[i];
            slot[h] = static_cast<int32_t>(head.size());
            head.push_back(static_cast<int32_t>(i));
            tail.push_back(static_cast<int32_t>(i));
        } else {
            const int32_t u = slot[h];
            next[tail[u]] = static_cast<int32_t>(i);
            tail[u] = static_cast<int32_t>(i);
        }
    }
    // The table rows are scattered over a table far larger than the caches, so each one
    // misses. Updating them in place stalls on those misses one row after another (the
    // stores wait for their lines); copying a block of rows out first issues all of its
    // loads at once, as a gather does, and the write-back then hits lines just read.
    // Measured on cold rows (4000 of 100,000): 0.76 ms in place, ~0.45 ms in blocks.
    constexpr size_t block = 64;
    const size_t m = head.size();
    std::vector<float> acc(block * d), sq(d), wb(block * d), sb(block), ms(block);
    std::vector<const float*> grs(block);
    for (size_t u0 = 0; u0 < m; u0 += block) {
        const size_t nb = std::min(block, m - u0);
        for (size_t k = 0; k < nb; ++k) {
            const int64_t r = I[head[u0 + k]];
            std::memcpy(&wb[k * d], W + r * d, d * sizeof(float));
            sb[k] = S[r];
        }
        for (size_t k = 0; k < nb; ++k) {  // each row's gradient: its one row of g, or a sum
            const int64_t first = head[u0 + k];
            grs[k] = G + first * d;
            if (next[first] != -1 || sign < 0) {  // several gradient rows (or -g): sum them
                float* a = &acc[k * d];
                std::fill(a, a + d, 0.f);
                for (int64_t i = first; i != -1; i = next[i])
                    for (int64_t j = 0; j < d; ++j) a[j] += sign * G[i * d + j];
                grs[k] = a;
            }
        }
        size_t k4 = 0;  // the rows' sums of squares, four rows at a time where d allows
        if (d >= 8 && d <= 128)
            for (; k4 + 4 <= nb; k4 += 4) pairwise_base<4, true>(&grs[k4], d, &ms[k4]);
        for (; k4 < nb; ++k4) {
            for (int64_t j = 0; j < d; ++j) sq[j] = grs[k4][j] * grs[k4][j];
            ms[k4] = pairwise_sum(sq.data(), d);
        }
        for (size_t k = 0; k < nb; ++k) {
            const float* gr = grs[k];
            sb[k] += ms[k] / fd;
            const float std_ = std::sqrt(sb[k]) + feps;
            float* wr = &wb[k * d];
            for (int64_t j = 0; j < d; ++j) wr[j] -= (gr[j] * fclr) / std_;
        }
        for (size_t k = 0; k < nb; ++k) {
            const int64_t r = I[head[u0 + k]];
            std::memcpy(W + r * d, &wb[k * d], d * sizeof(float));
            S[r] = sb[k];
        }
    }
}

// The masking and the max-shift of softmax scores, in one pass over them (the loss's
// first half; numpy's exp runs next, then `softmax_normalize_`):
//
//   masked(i, j) = neg_ids[i / chunk, j] == pos_ids[i]  or  (diag and j == i % chunk)
//   m[i] = max(pos[i], x[i, j] for j not masked)          (NaN propagates, as numpy's)
//   x[i, j] = (masked(i, j) ? -inf : x[i, j]) - m[i]
//
// Returns m. The mask never exists as an array: it is the ids' comparison, made where it
// is used (the batch negatives' diagonal is the positive itself, always masked).
EMBER_CLONES carray<float> softmax_shift_(carray<float> x, carray<float> pos, carray<int64_t> pos_ids,
                             carray<int64_t> neg_ids, int64_t chunk, bool diag) {
    if (x.ndim() != 2 || pos.ndim() != 1 || pos_ids.ndim() != 1 || neg_ids.ndim() != 2)
        throw std::invalid_argument("softmax_shift_: expected x (n, k), pos (n,), pos_ids (n,), neg_ids (c, k)");
    const int64_t n = x.shape(0), k = x.shape(1);
    if (chunk <= 0 || n % chunk != 0 || pos.shape(0) != n || pos_ids.shape(0) != n ||
        neg_ids.shape(0) != n / chunk || neg_ids.shape(1) != k || (diag && chunk > k))
        throw std::invalid_argument("softmax_shift_: shapes of x, pos, pos_ids, neg_ids and chunk do not match");
    carray<float> m(n);
    float* X = x.mutable_data();
    float* M = m.mutable_data();
    const float* P = pos.data();
    const int64_t *PI = pos_ids.data(), *NI = neg_ids.data();
    py::gil_scoped_release nogil;
    const float ninf = -std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t i = 0; i < n; ++i) {
        float* row = X + i * k;
        const int64_t* ids = NI + (i / chunk) * k;
        const int64_t own = PI[i];
        // branch-free, and the max in four independent lanes (a max is exact in any order;
        // a NaN is tracked apart): one chain of dependent compares measured 1.4x slower
        if (diag) row[i % chunk] = ninf;  // the chunk's diagonal: the positive itself
        float mx[4] = {ninf, ninf, ninf, ninf};
        bool any_nan = false;
        int64_t j = 0;
        for (; j + 4 <= k; j += 4)
            for (int l = 0; l < 4; ++l) {
                const float v = ids[j + l] == own ? ninf : row[j + l];
                row[j + l] = v;
                any_nan |= v != v;
                mx[l] = v > mx[l] ? v : mx[l];
            }
        for (; j < k; ++j) {
            const float v = ids[j] == own ? ninf : row[j];
            row[j] = v;
            any_nan |= v != v;
            mx[0] = v > mx[0] ? v : mx[0];
        }
        const float best = std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3]));
        const float p = P[i];
        const float mi = (any_nan || p != p) ? nan : (p > best ? p : best);
        M[i] = mi;
        for (j = 0; j < k; ++j) row[j] -= mi;
    }
    return m;
}

// The loss's second half, after exp: z[i] = epos[i] + sum_j e[i, j] (summed in numpy's
// pairwise order), then e[i, :] /= z[i] (the negatives' gradient). Returns z.
EMBER_CLONES carray<float> softmax_normalize_(carray<float> e, carray<float> epos) {
    if (e.ndim() != 2 || epos.ndim() != 1 || epos.shape(0) != e.shape(0))
        throw std::invalid_argument("softmax_normalize_: expected e (n, k) and epos (n,)");
    const int64_t n = e.shape(0), k = e.shape(1);
    carray<float> z(n);
    float* E = e.mutable_data();
    float* Z = z.mutable_data();
    const float* EP = epos.data();
    py::gil_scoped_release nogil;
    int64_t i = 0;
    if (k >= 8 && k <= 128)
        for (; i + 4 <= n; i += 4) {
            const float* rows[4] = {E + i * k, E + (i + 1) * k, E + (i + 2) * k, E + (i + 3) * k};
            float sums[4];
            pairwise_base<4, false>(rows, k, sums);
            for (int q = 0; q < 4; ++q) {
                float* row = E + (i + q) * k;
                const float zi = EP[i + q] + sums[q];
                Z[i + q] = zi;
                for (int64_t j = 0; j < k; ++j) row[j] /= zi;
            }
        }
    for (; i < n; ++i) {
        float* row = E + i * k;
        const float zi = EP[i] + pairwise_sum(row, k);
        Z[i] = zi;
        for (int64_t j = 0; j < k; ++j) row[j] /= zi;
    }
    return z;
}

// Evaluation's count of a block of candidate scores, in one pass and no temporaries: per
// row i of S (n, m), how many entries beat pos[i] (>) and how many beat or tie it (>=)
// (a NaN entry counts in neither, a NaN pos[i] gets 0 and 0), and how many entries of S
// are not finite. Returns (gt, ge, nonfinite). With `clear`, each piece of a row is set
// to zero once counted, while in L1: the next product can then add into S (BLAS's beta
// = 1) instead of zeroing it first in a pass of its own.
EMBER_CLONES py::tuple tally_rows(carray<float> S, carray<float> pos, bool clear) {
    if (S.ndim() != 2 || pos.ndim() != 1 || pos.shape(0) != S.shape(0))
        throw std::invalid_argument("tally_rows: expected S (n, m) and pos (n,)");
    const int64_t n = S.shape(0), m = S.shape(1);
    py::array_t<int64_t> gt(n), ge(n);
    int64_t* G = gt.mutable_data();
    int64_t* E = ge.mutable_data();
    float* X = clear ? S.mutable_data() : const_cast<float*>(S.data());
    const float* P = pos.data();
    int64_t bad = 0;
    constexpr int64_t piece = 4096;  // 16 KiB of a row: counted, then cleared in L1
    {
        py::gil_scoped_release nogil;
        for (int64_t i = 0; i < n; ++i) {
            const float p = P[i];
            float* row = X + i * m;
            int64_t A = 0, B = 0, C = 0;
            for (int64_t j0 = 0; j0 < m; j0 += piece) {
                const int64_t j1 = std::min(m, j0 + piece);
                int32_t a = 0, b = 0, c = 0;  // per piece in 32 bits: vectorises
                for (int64_t j = j0; j < j1; ++j) {
                    const float v = row[j];
                    a += v > p;
                    b += v >= p;
                    c += !(v - v == 0.0f);  // inf - inf and NaN - NaN are NaN
                }
                A += a;
                B += b;
                C += c;
                if (clear) std::fill(row + j0, row + j1, 0.0f);
            }
            G[i] = A;
            E[i] = B;
            bad += C;
        }
    }
    return py::make_tuple(gt, ge, bad);
}


// The positives' gradient of a dot comparator added to what the negatives' products gave
// (the fused loss's last pass over the rows): y[i, :] = base[i, :] + s[i] * x[i, :], with
// s[i] * x[i, j] rounded first, as numpy's `base + s[:, None] * x` rounds it. `y`, `x`
// (n, d) and `s` (n,) are contiguous; `base` is y itself (in place) or a (C, B, d) view
// with C * B == n whose rows have any strides (a slice of the candidates' gradient), so
// neither the product nor the slice is ever a temporary.
EMBER_CLONES void addcmul_rows_(carray<float> y, carray<float> s, carray<float> x, py::array_t<float, 0> base) {
    if (y.ndim() != 2 || s.ndim() != 1 || x.ndim() != 2 || base.ndim() != 3)
        throw std::invalid_argument("addcmul_rows_: expected y (n, d), s (n,), x (n, d), base (c, b, d)");
    const int64_t n = y.shape(0), d = y.shape(1), B = base.shape(1);
    if (s.shape(0) != n || x.shape(0) != n || x.shape(1) != d || base.shape(0) * B != n || base.shape(2) != d ||
        (d > 1 && base.strides(2) != static_cast<py::ssize_t>(sizeof(float))))
        throw std::invalid_argument("addcmul_rows_: shapes of y, s, x and base do not match");
    float* Y = y.mutable_data();
    const float* S = s.data();
    const float* X = x.data();
    const char* base0 = reinterpret_cast<const char*>(base.data());
    const py::ssize_t s0 = base.strides(0), s1 = base.strides(1);
    py::gil_scoped_release nogil;
    for (int64_t i = 0; i < n; ++i) {
        const float* b = reinterpret_cast<const float*>(base0 + (i / B) * s0 + (i % B) * s1);
        float* yr = Y + i * d;
        const float* xr = X + i * d;
        const float si = S[i];
        for (int64_t j = 0; j < d; ++j) {
            const float t = si * xr[j];
            yr[j] = b[j] + t;
        }
    }
}

// Which edges' keys `keep[i] * num_rel + rel[i]` are among the sorted, unique `queries`:
// eval's filter, matching every known edge of the graph against a sample's few queries.
// A bitmap of the queries' hashes (64 bits a query, in L1 for a thousand) rules out
// nearly every key in the same pass that makes it; only the rest are searched.
EMBER_CLONES py::array_t<bool> member_keys(carray<int64_t> keep, carray<int64_t> rel, int64_t num_rel,
                                           carray<int64_t> queries) {
    if (keep.ndim() != 1 || rel.ndim() != 1 || queries.ndim() != 1 || rel.shape(0) != keep.shape(0))
        throw std::invalid_argument("member_keys: shapes of keep, rel and queries do not match");
    const int64_t n = keep.shape(0), m = queries.shape(0);
    py::array_t<bool> out(n);
    bool* O = out.mutable_data();
    const int64_t *K = keep.data(), *R = rel.data(), *Q = queries.data();
    py::gil_scoped_release nogil;
    if (m == 0) {
        std::fill(O, O + n, false);
        return out;
    }
    int bits = 10;
    while (bits < 30 && (int64_t{1} << bits) < 64 * m) ++bits;
    const int shift = 64 - bits;
    std::vector<uint64_t> hit(((size_t{1} << bits) + 63) / 64, 0);
    constexpr uint64_t gamma = 0x9E3779B97F4A7C15ull;
    for (int64_t j = 0; j < m; ++j) {
        const uint64_t h = (static_cast<uint64_t>(Q[j]) * gamma) >> shift;
        hit[h >> 6] |= uint64_t{1} << (h & 63);
    }
    for (int64_t i = 0; i < n; ++i) {
        const int64_t key = static_cast<int64_t>(static_cast<uint64_t>(K[i]) * static_cast<uint64_t>(num_rel) +
                                                 static_cast<uint64_t>(R[i]));  // numpy's wrap-around
        const uint64_t h = (static_cast<uint64_t>(key) * gamma) >> shift;
        O[i] = ((hit[h >> 6] >> (h & 63)) & 1) && std::binary_search(Q, Q + m, key);
    }
    return out;
}

// CRC-32 as zlib computes it (reflected polynomial 0xEDB88320), for checkpoint checksums.
// zlib's table code ran at 2.2 GiB/s here, the file's read included: a 482 MiB partition's
// checksum took 0.21 s, twice its read. Where the CPU multiplies carry-less (PCLMULQDQ, x86-64 since 2010), the
// buffer is folded 64 bytes at a time into four 128-bit remainders and reduced at the end
// (Gopal et al., "Fast CRC computation for generic polynomials using PCLMULQDQ", Intel
// 2009; the constants are x^k mod P for the fold distances, bit-reflected); a table
// handles the last bytes and any CPU without the instruction.
uint32_t crc32_table_update(uint32_t c, const uint8_t* p, size_t n) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t r = i;
            for (int k = 0; k < 8; ++k) r = (r >> 1) ^ (0xEDB88320u & (0u - (r & 1u)));
            t[i] = r;
        }
        return t;
    }();
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c;
}

#ifdef EMBER_CLMUL
#define EMBER_CLMUL_FN __attribute__((target("pclmul,sse4.1")))
EMBER_CLMUL_FN inline __m128i load16(const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); }

EMBER_CLMUL_FN inline __m128i fold(__m128i x, __m128i k, __m128i next) {  // x * x^distance + next, mod P
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

// The raw (uninverted) CRC register after n bytes at p, n >= 64 and a multiple of 16.
EMBER_CLMUL_FN uint32_t crc32_fold(uint32_t c, const uint8_t* p, size_t n) {
    const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);  // x^(4*128+-32) mod P
    const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);  // x^(128+-32) mod P
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);              // x^64 mod P
    const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);  // Barrett: x^64 / P, P
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1 = _mm_xor_si128(load16(p), _mm_cvtsi32_si128(static_cast<int>(c)));
    __m128i x2 = load16(p + 16), x3 = load16(p + 32), x4 = load16(p + 48);
    p += 64;
    n -= 64;
    for (; n >= 64; n -= 64, p += 64) {
        x1 = fold(x1, k1k2, load16(p));
        x2 = fold(x2, k1k2, load16(p + 16));
        x3 = fold(x3, k1k2, load16(p + 32));
        x4 = fold(x4, k1k2, load16(p + 48));
    }
    x1 = fold(x1, k3k4, x2);  // four remainders into one
    x1 = fold(x1, k3k4, x3);
    x1 = fold(x1, k3k4, x4);
    for (; n >= 16; n -= 16, p += 16) x1 = fold(x1, k3k4, load16(p));
    // 128 -> 64 bits (appending 32 zero bits), 64 -> 32, then Barrett's reduction
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x10), _mm_srli_si128(x1, 8));
    __m128i x2b = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00), x2b);
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x1, t), 1));
}
#endif

// zlib.crc32(data, crc): the running CRC-32 of what came before (0 at the start) updated
// with `data`.
uint32_t crc32_update(carray<uint8_t> data, uint32_t crc) {
    const uint8_t* p = data.data();
    size_t n = static_cast<size_t>(data.size());
    uint32_t c = ~crc;
    py::gil_scoped_release nogil;
#ifdef EMBER_CLMUL
    static const bool clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    if (clmul && n >= 64) {
        const size_t m = n & ~size_t{15};
        c = crc32_fold(c, p, m);
        p += m;
        n -= m;
    }
#endif
    return ~crc32_table_update(c, p, n);
}

}  // namespace

PYBIND11_MODULE(ember_cpu_kernels, m) {
    m.def("row_adagrad_rows", &row_adagrad_rows, "row-wise Adagrad on repeated rows, coalesced on the fly");
    m.def("softmax_shift_", &softmax_shift_, "mask and max-shift softmax scores in place; returns the max");
    m.def("softmax_normalize_", &softmax_normalize_, "normalise exp'd softmax scores in place; returns z");
    m.def("addcmul_rows_", &addcmul_rows_, "y = base + s[:, None] * x, base a (c, b, d) view of any row strides");
    m.def("member_keys", &member_keys, "per edge: is keep * num_rel + rel among the sorted unique queries");
    m.def("crc32_update", &crc32_update, "zlib.crc32(data, crc), folded by carry-less multiplication where the CPU has it");
    m.def("tally_rows", &tally_rows, "per row: entries above, and at or above, the positive; non-finite entries");
}

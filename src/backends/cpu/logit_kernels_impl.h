// The decode's micro-kernels as one template over the vector operations
// (Ops) and the tile height (MR), instantiated once per set by
// logit_kernels_<set>.cpp. Each of those files includes this header after a
// `#pragma GCC target` for its instruction set, so it must not include
// anything: whatever a header defined inline here would be compiled for that
// set and could be linked into code that runs on any CPU.
//
// Ops provides, for vectors V of W floats (and P of W bf16 pairs):
//   zero(), load(p) (aligned), bcast(p) (one float to every lane),
//   fma(a, b, acc) = a * b + acc, add(a, b), loadu(p), storeu(p, v),
//   prefetch(p) (one 64-byte line into L2),
//   load_pairs(p) (aligned), bcast_pair(p) (one 32-bit pair to every lane),
//   dot2(acc, a, b): acc + a_odd * b_odd, then + a_even * b_even, per lane.
#pragma once

namespace neuronlens::cpu::kernels {

template <class Ops, int MR>
struct LogitTiles {
  using V = typename Ops::V;
  using P = typename Ops::P;
  static constexpr int W = Ops::W;
  static constexpr int NR = 2 * W;
  // One B panel chunk (depth x NR words of 4 bytes) is kept to 20 KiB so that
  // it stays in L1 while every A panel of the block passes over it.
  static constexpr long kChunkDepth = 20480 / (4 * NR);
  static constexpr long kLinesPerStep = NR * 4 / 64;  // 64-byte lines of one B panel step

  static void store_row(float* row, V lo, V hi, bool accumulate) {
    if (accumulate) {
      lo = Ops::add(lo, Ops::loadu(row));
      hi = Ops::add(hi, Ops::loadu(row + W));
    }
    Ops::storeu(row, lo);
    Ops::storeu(row + W, hi);
  }

  // One MR x NR tile over kc steps of k: a [kc][MR], b [kc][NR] words
  // (floats, or unsigned bf16 pairs). The first prefetch_steps steps of
  // `prefetch` (the next B panel) are pulled into L2 meanwhile.
  template <typename Word>
  static void tile(const Word* a, const Word* b, long kc, float* c, long ldc, bool accumulate, const Word* prefetch,
                   long prefetch_steps) {
    constexpr bool kFloat = __is_same(Word, float);  // else unsigned bf16 pairs
    V acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = Ops::zero();
#pragma GCC unroll 4
    for (long k = 0; k < kc; ++k) {
      if (k < prefetch_steps) {
        for (long l = 0; l < kLinesPerStep; ++l) Ops::prefetch(prefetch + k * NR + l * 16);
      }
      if constexpr (kFloat) {
        const V b0 = Ops::load(b + k * NR), b1 = Ops::load(b + k * NR + W);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const V x = Ops::bcast(a + k * MR + r);
          acc[r][0] = Ops::fma(x, b0, acc[r][0]);
          acc[r][1] = Ops::fma(x, b1, acc[r][1]);
        }
      } else {
        const P b0 = Ops::load_pairs(b + k * NR), b1 = Ops::load_pairs(b + k * NR + W);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const P x = Ops::bcast_pair(a + k * MR + r);
          acc[r][0] = Ops::dot2(acc[r][0], x, b0);
          acc[r][1] = Ops::dot2(acc[r][1], x, b1);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) store_row(c + r * ldc, acc[r][0], acc[r][1], accumulate);
  }

  // C = A · B^T over whole panels, k in equal chunks of at most kChunkDepth
  // (later chunks add into C). Word is float or unsigned (bf16 pairs).
  template <typename Word>
  static void product(const Word* a, long a_panels, const Word* b, long b_panels, long k, float* c, long ldc) {
    const long chunks = (k + kChunkDepth - 1) / kChunkDepth;
    const long chunk = chunks > 0 ? (k + chunks - 1) / chunks : 0;
    for (long k0 = 0; k0 < k; k0 += chunk) {
      const long kc = k - k0 < chunk ? k - k0 : chunk;
      for (long jp = 0; jp < b_panels; ++jp) {
        const Word* bp = b + (jp * k + k0) * NR;
        // The same chunk of the next panel, fetched into L2 a share at a time
        // by each of this panel's tile calls.
        const Word* next = jp + 1 < b_panels ? b + ((jp + 1) * k + k0) * NR : nullptr;
        const long share = (kc + a_panels - 1) / a_panels;
        for (long ip = 0; ip < a_panels; ++ip) {
          const long from = ip * share < kc ? ip * share : kc;
          const long steps = kc - from < share ? kc - from : share;
          tile<Word>(a + (ip * k + k0) * MR, bp, kc, c + ip * MR * ldc + jp * NR, ldc, k0 > 0,
               next ? next + from * NR : nullptr, next ? steps : 0);
        }
      }
    }
  }

  static void product_f32(const float* a, long a_panels, const float* b, long b_panels, long k, float* c,
                          long ldc) {
    product(a, a_panels, b, b_panels, k, c, ldc);
  }
  static void product_bf16(const unsigned* a, long a_panels, const unsigned* b, long b_panels, long k2, float* c,
                           long ldc) {
    product(a, a_panels, b, b_panels, k2, c, ldc);
  }
};

// Portable operations on W lanes, plain C++ loops (the compiler vectorises
// them as far as the baseline instruction set allows). bf16 pairs are
// emulated: a pair's odd element is its high 16 bits, the even one its low.
template <int Lanes>
struct PortableOps {
  static constexpr int W = Lanes;
  struct V {
    float v[Lanes];
  };
  struct P {
    unsigned v[Lanes];
  };
  static float bits_to_float(unsigned u) {
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
  static V zero() {
    V r;
    for (int i = 0; i < W; ++i) r.v[i] = 0.0f;
    return r;
  }
  static V load(const float* p) {
    V r;
    for (int i = 0; i < W; ++i) r.v[i] = p[i];
    return r;
  }
  static V loadu(const float* p) { return load(p); }
  static V bcast(const float* p) {
    V r;
    for (int i = 0; i < W; ++i) r.v[i] = *p;
    return r;
  }
  static V fma(V a, V b, V acc) {
    for (int i = 0; i < W; ++i) acc.v[i] += a.v[i] * b.v[i];
    return acc;
  }
  static V add(V a, V b) {
    for (int i = 0; i < W; ++i) a.v[i] += b.v[i];
    return a;
  }
  static void storeu(float* p, V v) {
    for (int i = 0; i < W; ++i) p[i] = v.v[i];
  }
  static void prefetch(const void*) {}
  static P load_pairs(const unsigned* p) {
    P r;
    for (int i = 0; i < W; ++i) r.v[i] = p[i];
    return r;
  }
  static P bcast_pair(const unsigned* p) {
    P r;
    for (int i = 0; i < W; ++i) r.v[i] = *p;
    return r;
  }
  // Each product of two bf16 values is exact in float32, so a * b + acc
  // rounds once whether or not the compiler fuses it.
  static V dot2(V acc, P a, P b) {
    for (int i = 0; i < W; ++i) {
      acc.v[i] += bits_to_float(a.v[i] & 0xffff0000u) * bits_to_float(b.v[i] & 0xffff0000u);
      acc.v[i] += bits_to_float(a.v[i] << 16) * bits_to_float(b.v[i] << 16);
    }
    return acc;
  }
};

}  // namespace neuronlens::cpu::kernels

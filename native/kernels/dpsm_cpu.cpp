// The fused DPSM kernel on the CPU: per row, a pass for the max, a pass for the sums (dpsm_math.h's row
// state) and, with a gradient, a pass that writes it; the row stays in L2 between them, so memory sees one read
// (and one write). The sums pass, bound by its exps, also prefetches the next row, so memory and arithmetic
// overlap instead of taking turns. No N×V temporaries. The caller splits rows across threads.
//
// This file is compiled once per vector ISA (CMakeLists.txt: DPSM_CPU_VARIANT = baseline, avx2, avx512,
// each with its own -m flags); GCC vector extensions give the same source for every width. The baseline
// build also holds the run-time dispatch (DPSM_CPU_DISPATCH).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "dpsm_kernels.h"

#ifndef DPSM_CPU_VARIANT
#error "DPSM_CPU_VARIANT must name the ISA variant being compiled"
#endif
#ifndef DPSM_VEC_WIDTH
#error "DPSM_VEC_WIDTH must give the float lanes per vector"
#endif

namespace dpsm {
namespace cpu {
namespace DPSM_CPU_VARIANT {
namespace {

constexpr int W = DPSM_VEC_WIDTH;
constexpr int kBlock = 4;   // vectors per block: independent loads and sums in flight
constexpr int kFlush = 16;  // blocks summed in float before the partial sums move to double

typedef float vf __attribute__((vector_size(W * 4)));
typedef double vd __attribute__((vector_size(W * 8)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef uint32_t vu __attribute__((vector_size(W * 4)));
typedef uint16_t vh __attribute__((vector_size(W * 2)));
typedef _Float16 vhf __attribute__((vector_size(W * 2)));

struct bf16_t {
  uint16_t bits;
};
struct f16_t {
  _Float16 v;
};

inline vf splat(float x) { return vf{} + x; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }  // a NaN in b wins, so NaN spreads

// e^x for x ≤ 0 (Cephes' single-precision polynomial, ~1 ulp); below −87.3 the result is flushed to 0.
// NaN in, NaN out.
inline vf vexp(vf x) {
  const vf fx = x * 1.44269504088896341f;
  const vf magic = splat(12582912.0f);  // 1.5·2^23: adding it rounds to the nearest integer
  const vf n = (fx + magic) - magic;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf y = splat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  vf scale;
  std::memcpy(&scale, &e, sizeof scale);
  const vf out = y * scale;
  return x < -87.3f ? vf{} : out;
}

// Loads and stores of W elements (unaligned) and of one element, for each logits dtype.
inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vf load(const bf16_t* p) {
  vh h;
  std::memcpy(&h, p, sizeof h);
  const vu u = __builtin_convertvector(h, vu) << 16;
  vf v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
inline vf load(const f16_t* p) {
  vhf h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, vf);
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline void store(bf16_t* p, vf v) {
  vu u;
  std::memcpy(&u, &v, sizeof u);
  const vu rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const vu quiet_nan = (u >> 16) | 0x40u;
  const vu is_nan = (u & 0x7fffffffu) > 0x7f800000u;  // all-ones lanes where v is NaN
  const vh h = __builtin_convertvector((rounded & ~is_nan) | (quiet_nan & is_nan), vh);
  std::memcpy(p, &h, sizeof h);
}
inline void store(f16_t* p, vf v) {
  const vhf h = __builtin_convertvector(v, vhf);
  std::memcpy(p, &h, sizeof h);
}

inline float load1(const float* p) { return *p; }
inline float load1(const bf16_t* p) { return bf16_bits_to_float(p->bits); }
inline float load1(const f16_t* p) { return static_cast<float>(p->v); }
inline void store1(float* p, float v) { *p = v; }
inline void store1(bf16_t* p, float v) { p->bits = float_to_bf16_bits(v); }
inline void store1(f16_t* p, float v) { p->v = static_cast<_Float16>(v); }

// With C0 (score smoothing's CE term) every entry also gains w·c0; without, the loop is the unsmoothed one as it was.
template <bool C0, typename T>
void write_grad(const T* z, T* g, int64_t vocab, int64_t y, const RowResult& r, float w) {
  const vf m = splat(r.m), inv = splat(r.inv_s1), c1 = splat(w * r.c1), c2 = splat(w * r.c2), c0 = splat(w * r.c0);
  int64_t i = 0;
  for (; i + W <= vocab; i += W) {
    const vf p = vexp(load(z + i) - m) * inv;
    if constexpr (C0)
      store(g + i, p * (c1 + c2 * p) + c0);
    else
      store(g + i, p * (c1 + c2 * p));
  }
  for (; i < vocab; ++i) {
    const float p = expf(load1(z + i) - r.m) * r.inv_s1;
    if constexpr (C0)
      store1(g + i, p * (w * r.c1 + w * r.c2 * p) + w * r.c0);
    else
      store1(g + i, p * (w * r.c1 + w * r.c2 * p));
  }
  store1(g + y, w * r.g_y);  // written last: with an in-place gradient z and g are the same row
}

// The max of z[begin, end) (−∞ when empty). A NaN may or may not win here; the sums after it carry it.
template <typename T>
float row_max(const T* z, int64_t begin, int64_t end) {
  float m = -__builtin_inff();
  int64_t i = begin;
  if (end - begin >= kBlock * W) {
    vf acc[kBlock];
    for (int j = 0; j < kBlock; ++j) acc[j] = splat(m);
    for (; i + kBlock * W <= end; i += kBlock * W)
      for (int j = 0; j < kBlock; ++j) acc[j] = vmax(acc[j], load(z + i + j * W));
    for (int j = 1; j < kBlock; ++j) acc[0] = vmax(acc[0], acc[j]);
    for (int l = 0; l < W; ++l) m = acc[0][l] > m ? acc[0][l] : m;
  }
  for (; i < end; ++i) {
    const float x = load1(z + i);
    m = x > m ? x : m;
  }
  return m;
}

// Adds Σ e^{z_k − m} and Σ e^{2(z_k − m)} over z[begin, end) into s1, s2. Each lane sums at most kFlush blocks
// in float before adding into double: a lane of a 4-wide baseline build would otherwise add ~12,000 terms of a
// 50,257-wide row in float, and its rounding error reaches 1e-5. With E (fp32 rows) stores each e^{z_k − m} at e[k] for
// the gradient pass, which then needs no second exp. e may be z itself (an in-place gradient): each element is read
// before it is written. With `next` (the thread's next row) each block also prefetches the same offsets of that
// row: without it the max pass waited on memory while the exps waited on nothing (bench:fused-loss, 2 cores, fp32
// 2,048 × 50,257 in place: 32 ms → 22 ms; still a gain at 1 MB rows, V = 262,144, whose pair overfills a 1 MB L2).
template <typename T, bool E>
void exp_sums(const T* z, float* e, const T* next, int64_t begin, int64_t end, float m, double& s1, double& s2) {
  const vf vm = splat(m);
  int64_t i = begin;
  vd o1 = vd{}, o2 = vd{};
  while (i + kBlock * W <= end) {
    vf a1 = vf{}, a2 = vf{};
    for (int b = 0; b < kFlush && i + kBlock * W <= end; ++b, i += kBlock * W) {
      for (int j = 0; j < kBlock; ++j) {
        if (next) __builtin_prefetch(next + i + j * W, 0, 3);
        const vf x = vexp(load(z + i + j * W) - vm);
        if constexpr (E) store(e + i + j * W, x);
        a1 += x;
        a2 += x * x;
      }
    }
    o1 += __builtin_convertvector(a1, vd);
    o2 += __builtin_convertvector(a2, vd);
  }
  for (int l = 0; l < W; ++l) {
    s1 += o1[l];
    s2 += o2[l];
  }
  for (; i < end; ++i) {
    const float x = expf(load1(z + i) - m);
    if constexpr (E) e[i] = x;
    s1 += x;
    s2 += static_cast<double>(x) * x;
  }
}

// The gradient from the stored e^{z_k − m} (fp32 rows): p = e·inv_s1, g = p·(c1 + c2·p) (+ c0), in place over e.
template <bool C0>
void grad_from_exp(float* g, int64_t vocab, int64_t y, const RowResult& r, float w) {
  const vf inv = splat(r.inv_s1), c1 = splat(w * r.c1), c2 = splat(w * r.c2), c0 = splat(w * r.c0);
  int64_t i = 0;
  for (; i + W <= vocab; i += W) {
    const vf p = load(g + i) * inv;
    if constexpr (C0)
      store(g + i, p * (c1 + c2 * p) + c0);
    else
      store(g + i, p * (c1 + c2 * p));
  }
  for (; i < vocab; ++i) {
    const float p = g[i] * r.inv_s1;
    if constexpr (C0)
      g[i] = p * (w * r.c1 + w * r.c2 * p) + w * r.c0;
    else
      g[i] = p * (w * r.c1 + w * r.c2 * p);
  }
  g[y] = w * r.g_y;
}

// Σ (z_k − zy) over z[begin, end), in double (score smoothing's CE term; a pass over the row while it is in L2).
// Relative to z_y, the sum carries the logits' spread, never their common offset.
template <typename T>
double shifted_sum(const T* z, int64_t begin, int64_t end, float zy) {
  const vf vy = splat(zy);
  int64_t i = begin;
  vd o = vd{};
  while (i + kBlock * W <= end) {
    vf a = vf{};
    for (int b = 0; b < kFlush && i + kBlock * W <= end; ++b, i += kBlock * W)
      for (int j = 0; j < kBlock; ++j) a += load(z + i + j * W) - vy;
    o += __builtin_convertvector(a, vd);
  }
  double s = 0.0;
  for (int l = 0; l < W; ++l) s += o[l];
  for (; i < end; ++i) s += static_cast<double>(load1(z + i)) - zy;
  return s;
}

template <typename T>
void fill_row(T* g, int64_t vocab, float value) {
  for (int64_t i = 0; i < vocab; ++i) store1(g + i, value);
}

template <typename T>
void fused_rows_t(const FusedArgs& a, int64_t row_begin, int64_t row_end) {
  const float alpha = static_cast<float>(alpha_at(a.spec, a.step ? *a.step : 0));
  if (row_begin == 0 && a.alpha_out) *a.alpha_out = alpha;
  const float w = a.grad_scale ? *a.grad_scale : 1.0f;
  const float smoothing = static_cast<float>(a.spec.smoothing);
  const bool logit_sum = needs_logit_sum(a.spec, alpha);
  const T* logits = static_cast<const T*>(a.logits);
  T* grad = static_cast<T*>(a.grad);
  const float nan = __builtin_nanf("");
  for (int64_t row = row_begin; row < row_end; ++row) {
    const T* z = logits + row * a.row_stride;
    T* g = grad ? grad + row * a.grad_stride : nullptr;
    float* stats = a.stats ? a.stats + row * kStatCount : nullptr;
    const int64_t y = a.targets[row];
    if (y == a.ignore_index || y < 0 || y >= a.vocab) {
      // Ignored rows contribute nothing; an out-of-range target poisons its row and raises the flag.
      const float v = y == a.ignore_index ? 0.0f : nan;
      if (v != 0.0f && a.bad_target) *a.bad_target = 1;
      if (a.row_loss) a.row_loss[row] = v;
      if (stats)
        for (int k = 0; k < kStatCount; ++k) stats[k] = v;
      if (g) fill_row(g, a.vocab, v);
      continue;
    }
    const float zy = load1(z + y);
    // The max first (a read with no arithmetic), then the sums with the final max (no rescaling), then, with a
    // gradient, the gradient. The row (≤ a few hundred KB) stays in the core's L2 after the first read, so memory
    // sees one read (and one write); fp32 rows keep each e^{z_k − m} in the gradient's place and compute one exp
    // per element instead of two.
    const float m_before = row_max(z, 0, y);
    const float m_after = row_max(z, y + 1, a.vocab);
    float m = zy > m_before ? zy : m_before;
    m = m_after > m ? m_after : m;
    // Before the sums: with an in-place fp32 gradient they overwrite the row with its exponentials.
    const double sx = logit_sum ? shifted_sum(z, 0, a.vocab, zy) : 0.0;
    double s1 = 0.0, s2 = 0.0;
    constexpr bool kFloat = std::is_same_v<T, float>;
    float* e = kFloat && g ? reinterpret_cast<float*>(g) : nullptr;
    const T* next = row + 1 < row_end ? z + a.row_stride : nullptr;
    if (e) {
      exp_sums<T, true>(z, e, next, 0, y, m, s1, s2);
      exp_sums<T, true>(z, e, next, y + 1, a.vocab, m, s1, s2);
    } else {
      exp_sums<T, false>(z, e, next, 0, y, m, s1, s2);
      exp_sums<T, false>(z, e, next, y + 1, a.vocab, m, s1, s2);
    }
    const RowResult r =
        finalize_row(RowState{m, static_cast<float>(s1), static_cast<float>(s2), static_cast<float>(sx)}, zy,
                     a.spec.kind, alpha, smoothing, a.vocab);
    if (a.row_loss) a.row_loss[row] = r.loss;
    if (stats) {
      stats[kStatNll] = r.nll;
      stats[kStatPy] = r.p_y;
      stats[kStatMaxP] = r.max_p;
      stats[kStatHit] = (zy == m && !(m_before >= m)) ? 1.0f : 0.0f;
      stats[kStatSqNorm] = r.sq_norm;
    }
    if (e) {
      if (r.c0 != 0.0f)
        grad_from_exp<true>(e, a.vocab, y, r, w);
      else
        grad_from_exp<false>(e, a.vocab, y, r, w);
    } else if (g) {
      if (r.c0 != 0.0f)
        write_grad<true>(z, g, a.vocab, y, r, w);
      else
        write_grad<false>(z, g, a.vocab, y, r, w);
    }
  }
}

}  // namespace

void fused_rows(const FusedArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.dtype) {
    case DType::F32: return fused_rows_t<float>(a, row_begin, row_end);
    case DType::BF16: return fused_rows_t<bf16_t>(a, row_begin, row_end);
    case DType::F16: return fused_rows_t<f16_t>(a, row_begin, row_end);
  }
}

}  // namespace DPSM_CPU_VARIANT

#ifdef DPSM_CPU_DISPATCH
namespace baseline {
void fused_rows(const FusedArgs&, int64_t, int64_t);
}
namespace avx2 {
void fused_rows(const FusedArgs&, int64_t, int64_t);
}
namespace avx512 {
void fused_rows(const FusedArgs&, int64_t, int64_t);
}

namespace {
using RowsFn = void (*)(const FusedArgs&, int64_t, int64_t);
struct Variant {
  const char* name;
  RowsFn fn;
};

bool cpu_has(const char* isa) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (std::strcmp(isa, "baseline") == 0) return true;
  if (std::strcmp(isa, "avx2") == 0) return avx2;
  if (std::strcmp(isa, "avx512") == 0)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  return false;
}

Variant variant_named(const char* isa) {
  if (std::strcmp(isa, "avx512") == 0) return {"avx512", avx512::fused_rows};
  if (std::strcmp(isa, "avx2") == 0) return {"avx2", avx2::fused_rows};
  return {"baseline", baseline::fused_rows};
}

Variant best_variant() {
  // DPSM_CPU_ISA names a variant to use instead of the best one, where this CPU has it.
  const char* wanted = std::getenv("DPSM_CPU_ISA");
  if (wanted && cpu_has(wanted)) return variant_named(wanted);
  for (const char* isa : {"avx512", "avx2"})
    if (cpu_has(isa)) return variant_named(isa);
  return variant_named("baseline");
}

Variant& current() {
  static Variant v = best_variant();
  return v;
}
}  // namespace

void fused_rows(const FusedArgs& args, int64_t row_begin, int64_t row_end) { current().fn(args, row_begin, row_end); }
const char* isa_name() { return current().name; }
bool use_isa(const char* isa) {
  if (std::strcmp(isa, "auto") == 0) {
    current() = best_variant();
    return true;
  }
  if (!cpu_has(isa)) return false;
  current() = variant_named(isa);
  return true;
}
#endif  // DPSM_CPU_DISPATCH

}  // namespace cpu
}  // namespace dpsm

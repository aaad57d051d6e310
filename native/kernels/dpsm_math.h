// The math of the fused DPSM loss, shared verbatim by the CPU and CUDA kernels.
//
// Per row of logits z (length V) and target y, one pass gathers
//   m   = max_k z_k                      (the running max starts at z_y, so it is finite for any sane row)
//   s1x = Σ_{k≠y} e^{z_k − m},  s2x = Σ_{k≠y} e^{2(z_k − m)}
// and everything else follows in closed form. Keeping the target out of the two sums is what makes the
// confident regime exact: 1 − p_y = s1x/s1 and Σ_{k≠y} p_k² = s2x/s1² carry no cancellation, so Brier,
// CE (via log1p) and the target's gradient stay accurate when p_y → 1, where 1 − 2p_y + ‖p‖² would not.
//
// Every kind's gradient has the same shape, which is why one kernel serves all of them:
//   ∂L/∂z_k = w·p_k·(c1 + c2·p_k)   for k ≠ y,        ∂L/∂z_y = w·g_y
// with per-row constants c1, c2, g_y from finalize_row() and the reduction weight w (1/count for a mean).
//
// Score smoothing (Shao et al., ICML 2024, arXiv 2405.18906, §"score smoothing"): with ε > 0 the loss is the
// expected score under the smoothed target q = (1 − ε)·onehot(y) + ε/V, i.e. S_ε(p, y) = (1 − ε)·S(p, y) +
// (ε/V)·Σ_j S(p, j). In closed form, with u = ε/V and sx = Σ_k (z_k − z_y) (one more row reduction):
//   CE_ε    = −Σ_k q_k log p_k = CE + ε·(z_y − mean z) = CE − u·sx            (label smoothing)
//   Brier_ε = Σ_j q_j·B(p, j) = ‖p‖² − 2(1 − ε)p_y − 2u + 1 = Brier + 2ε·(p_y − 1/V)
// and the gradient keeps its shape with one more per-row constant, c0, added to every k ≠ y:
//   ∂L/∂z_k = w·(p_k·(c1 + c2·p_k) + c0)   (CE_ε's p_k − q_k gives c0 = −u; Brier_ε has none).
// ε = 0 takes none of these paths, so its results are those of the unsmoothed kernel bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define DPSM_HD __host__ __device__ __forceinline__
#else
// Internal linkage on the host: the CPU kernel is compiled once per vector ISA, and a shared (COMDAT)
// inline copy built for AVX-512 must never be what a baseline caller links to.
#define DPSM_HD static inline
#endif

namespace dpsm {

enum class Kind : int32_t { CE = 0, Brier = 1, Spherical = 2, DPSM = 3 };
enum class Schedule : int32_t { Linear = 0, Cosine = 1, Fixed = 2, Step = 3 };
enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2 };

// What the loss is; α(step) is a pure function of this and the step.
struct LossSpec {
  Kind kind = Kind::CE;
  Schedule schedule = Schedule::Linear;
  double warmup_steps = 1.0;  // W > 0 for linear/cosine/step
  double alpha = 0.0;         // the fixed α for Schedule::Fixed
  double smoothing = 0.0;     // ε in [0, 1): score smoothing of ce, brier and dpsm (not spherical); 0: none
};

// The weight of Brier in the mix at a given optimiser step, in closed form:
// linear min(1, s/W); cosine ½(1 − cos(π·min(1, s/W))); step 0 for s < W, 1 from s = W on (CE, then Brier);
// fixed a. `ce` is α = 0, `brier` α = 1. Spherical does not mix; it reports α = 0.
DPSM_HD double alpha_at(const LossSpec& spec, int64_t step) {
  switch (spec.kind) {
    case Kind::CE:
    case Kind::Spherical: return 0.0;
    case Kind::Brier: return 1.0;
    case Kind::DPSM: break;
  }
  if (spec.schedule == Schedule::Fixed) return spec.alpha;
  if (spec.schedule == Schedule::Step) return static_cast<double>(step) >= spec.warmup_steps ? 1.0 : 0.0;
  double x = step <= 0 ? 0.0 : static_cast<double>(step) / spec.warmup_steps;
  if (x > 1.0) x = 1.0;
  if (spec.schedule == Schedule::Linear) return x;
  return 0.5 * (1.0 - cos(3.14159265358979323846 * x));
}

// Partial reduction over a slice of a row: combined with merge(), in any order and grouping.
struct RowState {
  float m;    // max over everything seen so far, including z_y
  float s1x;  // Σ e^{z_k − m} over non-target k seen so far
  float s2x;  // Σ e^{2(z_k − m)} over non-target k seen so far
  float sx;   // Σ (z_k − z_y) over non-target k seen so far: smoothed CE's Σ z (left 0 when nothing needs it)
};

DPSM_HD RowState row_state_init(float z_target) { return RowState{z_target, 0.0f, 0.0f, 0.0f}; }

// Whether a row's loss needs RowState::sx: smoothing with CE in the mix (ce, or dpsm at α < 1).
DPSM_HD bool needs_logit_sum(const LossSpec& spec, float alpha) {
  return spec.smoothing > 0.0 && (spec.kind == Kind::CE || (spec.kind == Kind::DPSM && alpha < 1.0f));
}

DPSM_HD void row_state_merge(RowState& a, const RowState& b) {
  const float m = a.m > b.m ? a.m : b.m;
  // Both maxima start at z_y, so m − a.m and m − b.m are never ∞ − ∞ for a finite z_y.
  const float ea = expf(a.m - m), eb = expf(b.m - m);
  a.s1x = a.s1x * ea + b.s1x * eb;
  a.s2x = a.s2x * ea * ea + b.s2x * eb * eb;
  a.sx += b.sx;  // relative to z_y, which every partial state shares: no rescaling
  a.m = m;
}

// Everything the gradient pass and the statistics need, from a row's final state.
struct RowResult {
  float loss;  // this row's loss for the spec's kind at α
  float nll;   // −log p_y
  float p_y;
  float sq_norm;  // ‖p‖²
  float max_p;    // max_k p_k = 1/s1
  float inv_s1;   // p_k = e^{z_k − m}·inv_s1
  float m;
  float c1, c2;  // ∂L/∂z_k = p_k(c1 + c2·p_k) + c0, k ≠ y
  float c0;      // 0 unless smoothing puts CE in the loss
  float g_y;     // ∂L/∂z_y
};

// `smoothing` is ε (0: none), `vocab` is V; with ε > 0 and CE in the mix, st.sx must hold Σ_{k≠y} (z_k − z_y).
// The statistics (nll, p_y, ‖p‖², max p) are the unsmoothed ones whatever ε is.
DPSM_HD RowResult finalize_row(const RowState& st, float z_target, Kind kind, float alpha, float smoothing,
                               int64_t vocab) {
  RowResult r;
  const float ey = expf(z_target - st.m);  // ≤ 1
  const float s1 = st.s1x + ey;
  const float inv = 1.0f / s1;
  const float py = ey * inv;
  const float rest = st.s1x * inv;      // 1 − p_y without cancellation
  const float qx = st.s2x * inv * inv;  // Σ_{k≠y} p_k²
  const float q = py * py + qx;
  // log(s1) + m − z_y == log1p(s1x/ey); the latter is exact when the target dominates.
  const float nll = py > 0.5f ? log1pf(st.s1x / ey) : logf(s1) + (st.m - z_target);
  const float brier = rest * rest + qx;  // (1 − p_y)² + Σ_{k≠y} p_k²
  const float py_minus_q = py * rest - qx;
  r.nll = nll;
  r.p_y = py;
  r.sq_norm = q;
  r.max_p = inv;
  r.inv_s1 = inv;
  r.m = st.m;
  switch (kind) {
    case Kind::CE:
      r.loss = nll;
      r.c1 = 1.0f;
      r.c2 = 0.0f;
      r.g_y = -rest;
      break;
    case Kind::Brier:
      r.loss = brier;
      r.c1 = 2.0f * py_minus_q;
      r.c2 = 2.0f;
      r.g_y = -2.0f * py * brier;
      break;
    case Kind::DPSM: {
      const float a = alpha, b = 1.0f - alpha;
      r.loss = b * nll + a * brier;
      r.c1 = b + 2.0f * a * py_minus_q;
      r.c2 = 2.0f * a;
      r.g_y = -(b * rest + 2.0f * a * py * brier);
      break;
    }
    case Kind::Spherical: {
      // loss −p_y/‖p‖; its gradient is (p_y/(‖p‖·q))·p_k² − (p_y/‖p‖)·δ_ky.
      const float n = sqrtf(q);
      const float py_n = py / n;
      r.loss = -py_n;
      r.c1 = 0.0f;
      r.c2 = py_n / q;
      r.g_y = -py_n * (qx / q);
      break;
    }
  }
  r.c0 = 0.0f;
  if (smoothing > 0.0f && kind != Kind::Spherical) {
    // Score smoothing (see the top of this file): the CE part gains −u·sx in its value, −u in every k ≠ y of its
    // gradient and ε − u at y (p_k − q_k); the Brier part 2ε(p_y − 1/V) in its value, −2ε·p_y in c1 and
    // 2ε·p_y·(1 − p_y) at y.
    const float eps = smoothing;
    const float u = eps / static_cast<float>(vocab);
    const float b = kind == Kind::CE ? 1.0f : kind == Kind::Brier ? 0.0f : 1.0f - alpha;
    const float a = 1.0f - b;
    if (b != 0.0f) {
      r.loss -= b * (u * st.sx);
      r.c0 = -b * u;
      r.g_y += b * (eps - u);
    }
    if (a != 0.0f) {
      r.loss += a * (2.0f * (eps * py - u));
      r.c1 -= a * (2.0f * eps * py);
      r.g_y += a * (2.0f * eps * py * rest);
    }
  }
  return r;
}

// The per-token statistics the Evaluator consumes, in this order, one row of kStatCount floats per token.
enum StatIndex : int32_t { kStatNll = 0, kStatPy = 1, kStatMaxP = 2, kStatHit = 3, kStatSqNorm = 4, kStatCount = 5 };

// Bits of 16-bit floats, shared so both back ends round the same way (round to nearest even).
DPSM_HD float bf16_bits_to_float(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v;
  v.u = static_cast<uint32_t>(h) << 16;
  return v.f;
}

DPSM_HD uint16_t float_to_bf16_bits(float f) {
  union {
    uint32_t u;
    float f;
  } v;
  v.f = f;
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((v.u >> 16) | 0x40u);  // quiet NaN
  v.u += 0x7fffu + ((v.u >> 16) & 1u);
  return static_cast<uint16_t>(v.u >> 16);
}

}  // namespace dpsm

// The cases the two checks of the fused CUDA kernel draw, and the host-side plumbing they share: the emulated
// check against the CPU kernel (test/helpers/cuda-emu/check.cpp, run by test/cuda-emulated.test.ts) and the GPU
// probe under compute-sanitizer (bench/gpu-verify/kernel-probe.cu). Host code only. The 16-bit float comes from
// cuda_fp16.h: the real one under nvcc, the emulation's (test/helpers/cuda-emu/) in the host-compiled test.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "dpsm_kernels.h"

namespace dpsm::check {

// xorshift64*, in [0, 1): the same stream on every machine, seeded by each check.
struct Rng {
  uint64_t state;
  double uniform() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return static_cast<double>((state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
  }
};

inline size_t elem_size(DType d) { return d == DType::F32 ? 4 : 2; }

// Element i of a buffer of dtype d, as the kernel reads and writes it (bf16 and f16 rounded to nearest even).
inline void put(uint8_t* base, DType d, int64_t i, float v) {
  if (d == DType::F32) {
    std::memcpy(base + 4 * i, &v, 4);
  } else if (d == DType::BF16) {
    const uint16_t h = float_to_bf16_bits(v);
    std::memcpy(base + 2 * i, &h, 2);
  } else {
    const __half x = __float2half_rn(v);
    std::memcpy(base + 2 * i, &x, 2);
  }
}

inline float get(const uint8_t* base, DType d, int64_t i) {
  if (d == DType::F32) {
    float f;
    std::memcpy(&f, base + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, base + 2 * i, 2);
  if (d == DType::BF16) return bf16_bits_to_float(h);
  __half x;
  std::memcpy(&x, &h, 2);
  return __half2float(x);
}

struct Case {
  Kind kind;
  Schedule schedule = Schedule::Linear;
  double smoothing;
  DType dtype;
  int64_t vocab, rows, pad;  // row stride = vocab + pad
  int offset, grad_offset;   // elements past the alignment of logits[0] and grad[0]
  bool inplace, extreme = false;
  int64_t step;
  int64_t stride() const { return vocab + pad; }
};

// The i-th case of the grid over dtype × kind × vocabulary: the rows' 16-byte phase (pad, offset), the gradient in
// place, at the logits' phase or (every 4th) at another, label smoothing where the kind takes it. The rows, the
// step, the schedule and extreme logits are each check's own.
inline Case grid_case(int i, DType d, Kind kind, int64_t V) {
  Case c{};
  c.kind = kind;
  c.smoothing = kind != Kind::Spherical && i % 3 == 0 ? 0.1 : 0.0;
  c.dtype = d;
  c.vocab = V;
  c.pad = i % 5 == 0 ? 3 : 0;
  c.offset = i % 7;
  c.grad_offset = i % 4 == 3 ? (c.offset + 1) % 8 : c.offset;
  c.inplace = i % 4 == 1;
  return c;
}

inline std::string name_of(const Case& c) {
  static const char* kinds[] = {"ce", "brier", "spherical", "dpsm"};
  static const char* scheds[] = {"linear", "cosine", "fixed", "step"};
  static const char* dtypes[] = {"f32", "bf16", "f16"};
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s/%s eps=%.2f %s V=%lld rows=%lld pad=%lld off=%d goff=%d%s%s step=%lld",
                kinds[static_cast<int>(c.kind)], scheds[static_cast<int>(c.schedule)], c.smoothing,
                dtypes[static_cast<int>(c.dtype)], (long long)c.vocab, (long long)c.rows, (long long)c.pad, c.offset,
                c.grad_offset, c.inplace ? " in-place" : "", c.extreme ? " extreme" : "", (long long)c.step);
  return buf;
}

// The fused kernel's arguments for case c (α's warm-up 5 steps; 0.3 under the fixed schedule) over its logits and
// targets; the step, the gradient and the outputs are the caller's to set.
inline FusedArgs fused_args(const Case& c, const void* logits, const int64_t* targets) {
  FusedArgs a;
  a.logits = logits;
  a.dtype = c.dtype;
  a.n_rows = c.rows;
  a.vocab = c.vocab;
  a.row_stride = c.stride();
  a.targets = targets;
  a.ignore_index = -100;
  a.spec = LossSpec{c.kind, c.schedule, 5.0, 0.3, c.smoothing};
  return a;
}

// The backward's scaling of case c's gradient (at the logits' stride) by go[row · go_stride].
inline ScaleArgs scale_args(const Case& c, void* grad, const float* go, int64_t go_stride) {
  return ScaleArgs{grad, c.dtype, c.rows, c.vocab, c.stride(), go, go_stride};  // in ScaleArgs' field order
}

}  // namespace dpsm::check

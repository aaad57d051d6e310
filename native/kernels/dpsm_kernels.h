// The fused DPSM kernel family's entry points: raw pointers only, no ATen, so the CUDA half compiles
// with nvcc alone and both halves can be driven by anything that owns the memory.
#pragma once

#include <cstdint>

#include "dpsm_math.h"

namespace dpsm {

// One call covers rows [0, n_rows) of a [n_rows, vocab] logits matrix (row stride in elements).
// Every pointer lives on the device that runs the kernel.
struct FusedArgs {
  const void* logits = nullptr;  // [n_rows, row_stride] of `dtype`
  DType dtype = DType::F32;
  int64_t n_rows = 0;
  int64_t vocab = 0;
  int64_t row_stride = 0;
  const int64_t* targets = nullptr;  // [n_rows]
  int64_t ignore_index = -100;
  LossSpec spec;
  const int64_t* step = nullptr;      // the optimiser step α is read from (a scalar the kernel reads)
  const float* grad_scale = nullptr;  // scalar weight w of every gradient entry (1/count for a mean); null: 1
  float* row_loss = nullptr;          // [n_rows] per-row loss (0 for ignored rows); may be null
  float* stats = nullptr;             // [n_rows, kStatCount] per-token statistics; may be null
  void* grad = nullptr;               // [n_rows, grad_stride] of `dtype`; may alias logits; may be null
  int64_t grad_stride = 0;
  float* alpha_out = nullptr;     // α the kernel used, written once; may be null
  int32_t* bad_target = nullptr;  // set to 1 when a target is outside [0, vocab) and not ignored
};

// The autograd op's backward on CUDA: grad[row, :] *= go[row·go_stride] (go_stride 0: one scalar for all rows),
// rows whose factor is 1 left untouched, decided on the device.
struct ScaleArgs {
  void* grad = nullptr;  // [n_rows, grad_stride] of `dtype`
  DType dtype = DType::F32;
  int64_t n_rows = 0;
  int64_t vocab = 0;
  int64_t grad_stride = 0;
  const float* go = nullptr;
  int64_t go_stride = 0;
};

namespace cpu {
// Rows [row_begin, row_end) of `args`, on the calling thread, vectorised for the best ISA this CPU has.
void fused_rows(const FusedArgs& args, int64_t row_begin, int64_t row_end);
// Which vector ISA fused_rows() uses ("avx512", "avx2" or "baseline").
const char* isa_name();
// The CPU kernel's arithmetic, numbered: raised whenever a change alters its results in the last bit (the order of
// its sums, its exp), so that a run resumed across the change is told its curve will not match bit for bit.
// 2: the max, then the sums at that max, then the gradient from the stored exponentials (was: online rescaling).
constexpr int kArithmeticRevision = 2;
// Switches fused_rows() to an ISA variant ("auto": the best this CPU has); false when the CPU lacks it.
// Not thread-safe against running kernels: for tests and benchmarks that compare the variants.
bool use_isa(const char* isa);
}  // namespace cpu

namespace cuda {
// Launches the whole job on `stream` (a cudaStream_t); returns the cudaError_t of the launch as int.
int launch_fused(const FusedArgs& args, void* stream);
// Launches the backward's scaling (ScaleArgs) on `stream`; returns the cudaError_t of the launch as int.
int launch_scale(const ScaleArgs& args, void* stream);
}  // namespace cuda

}  // namespace dpsm

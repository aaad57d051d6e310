// Data-parallel training over torch.distributed's c10d, the engine PyTorch's own DDP and torchrun use: one
// process per rank, a TCPStore rendezvous at (master_addr, master_port) and a process group: NCCL when the model
// is on a GPU (where the build has it), Gloo on the CPU. The trainer
// calls it at four fixed points of its loop: parameters broadcast from rank 0 when a fit starts, gradients
// averaged after the last micro-batch of a step (before clipping), the step's statistics summed, and rank 0's
// evaluation decision shared. With one rank every call is a no-op and no process group exists.
//
// Gradient averaging is bucketed (buckets of about bucket_bytes, parameters in reverse order, the order backward
// produces them) and every bucket's all-reduce is in flight at once; it starts after backward rather than during
// it (c10d's Reducer, which overlaps the two, is tied to autograd hooks whose API differs between the libtorch
// majors this package builds against).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "../config.h"

namespace dpsm::core {

struct DistributedConfig {
  int64_t rank = 0, world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  double timeout_s = 1800;  // how long a collective waits for the other ranks (rank 0's evaluations included)
  int64_t bucket_bytes = 25 << 20;
};
// lib/distributed.ts's document (every field required).
DistributedConfig distributed_config_from_json(const Json& j);

// The process-group backends this build has ("gloo", "gloo,nccl" or ""): for buildInfo().
std::string distributed_backends();

class ProcessGroupHandle;

class DataParallel {
 public:
  // Joins (once per process, on first use) the process group the config names, with the backend for `device`
  // (the model's); a second trainer of the same process reuses it, and one naming another group is refused.
  DataParallel(const DistributedConfig& c, const at::Device& device);
  bool active() const { return c_.world_size > 1; }
  bool is_root() const { return c_.rank == 0; }
  int64_t rank() const { return c_.rank; }
  int64_t world_size() const { return c_.world_size; }

  // Every rank takes rank 0's values.
  void broadcast_parameters(const std::vector<at::Tensor>& params);
  // Each parameter's gradient becomes the mean of the ranks' gradients (an undefined gradient counts as zeros).
  void average_gradients(const std::vector<at::Tensor>& params);
  // Sums a small CPU float64 tensor over the ranks, in place.
  void sum(at::Tensor& values);
  // Rank 0's `value` on every rank.
  bool broadcast_flag(bool value);

 private:
  DistributedConfig c_;
  std::shared_ptr<ProcessGroupHandle> group_;
};

}  // namespace dpsm::core

// The ATen ops a piece of work dispatches, recorded through libtorch's RecordFunction callbacks (the hooks its
// profiler uses; libtorch 1.13 and 2.x alike): each op's name, its nesting depth, the user scopes the product
// names (the trainer's "dpsm::step", "dpsm::optimizer", ...) and the shapes and dtypes of its tensors. For the
// op-list guard (test/step-ops.test.ts) and the roofline benchmark (bench/step-roofline.ts); never shipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dpsm::core {

struct RecordedTensor {
  std::vector<int64_t> sizes;
  std::string dtype;  // c10's name: Float, BFloat16, Long, ...
  int64_t bytes = 0;  // numel × element size (what a kernel reads or writes of it, views aside)
};

struct RecordedEvent {
  enum class Kind { Op, Begin, End } kind = Kind::Op;  // an op, or a user scope's start or end
  std::string name;
  int depth = 0;        // ops: enclosing ops on the same thread (0: called by the product's code)
  uint64_t thread = 0;  // libtorch's thread id of the recording thread
  std::vector<RecordedTensor> inputs, outputs;  // ops only
};

// Starts recording every thread's ops and user scopes (a second start clears what was recorded).
void start_op_recording();
// Stops recording and returns the events in the order they began (ends in the order they ended).
std::vector<RecordedEvent> stop_op_recording();

}  // namespace dpsm::core

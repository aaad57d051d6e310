// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian bytes), so
// our checkpoints open in Hugging Face and theirs open here. Files are written through io/atomic_file.h.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace dpsm::core {

struct SafeTensors {
  std::map<std::string, at::Tensor> tensors;    // CPU tensors, the file's dtypes
  std::map<std::string, std::string> metadata;  // the header's "__metadata__" (string values)
};

// Reads a whole file. Throws std::runtime_error naming the file on any malformed content.
SafeTensors read_safetensors(const std::string& path);

// A checkpoint's weights: one safetensors file, or Hugging Face's sharded layout given by its
// model.safetensors.index.json (every tensor of the weight map read from its shard, none twice). Throws naming
// the file at fault.
SafeTensors read_hf_weights(const std::string& path);

// Writes `st` to `path` via a temporary file in the same folder and a rename, so readers only ever see a
// complete file. Tensors are stored contiguous, in their own dtype (float32, float16, bfloat16, int64,
// int32, uint8 supported).
void write_safetensors_atomic(const std::string& path, const SafeTensors& st);

}  // namespace dpsm::core

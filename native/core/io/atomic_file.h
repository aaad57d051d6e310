// The one way the native core writes a file: a temporary file in the same folder, flushed to disk, then
// renamed over the target, so a reader (or a resume after a crash) sees the old file or the new one, never
// a part of either.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace dpsm::core {

// Writes the concatenation of `chunks` to `path` atomically. Throws std::runtime_error naming the file.
void write_atomic(const std::string& path, const std::vector<std::pair<const char*, size_t>>& chunks);

inline void write_atomic(const std::string& path, const std::string& content) {
  write_atomic(path, {{content.data(), content.size()}});
}

}  // namespace dpsm::core

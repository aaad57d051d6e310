#include "safetensors.h"

#include "atomic_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

namespace dpsm::core {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw std::runtime_error("safetensors: " + path + ": " + what);
}

at::ScalarType dtype_of(const std::string& s, const std::string& where) {
  if (s == "F32") return at::kFloat;
  if (s == "F16") return at::kHalf;
  if (s == "BF16") return at::kBFloat16;
  if (s == "F64") return at::kDouble;
  if (s == "I64") return at::kLong;
  if (s == "I32") return at::kInt;
  if (s == "I16") return at::kShort;
  if (s == "I8") return at::kChar;
  if (s == "U8") return at::kByte;
  if (s == "BOOL") return at::kBool;
  throw std::runtime_error("safetensors: " + where + ": dtype: expected one of F32, F16, BF16, F64, I64, I32, I16, " +
                           "I8, U8, BOOL, got '" + s + "'");
}

std::string name_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kDouble: return "F64";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: throw std::runtime_error(std::string("safetensors: cannot store dtype ") + c10::toString(t));
  }
}

// A header nests three deep (the object, an entry, its shape); a safetensors writer never goes further. The
// bound is checked on the raw bytes before parsing because nlohmann's dump() and the error messages built from
// it recurse once per level: 100,000 nested objects in __metadata__ overflowed the stack (SIGSEGV).
constexpr int kMaxJsonDepth = 64;

// The deepest nesting of objects and arrays in `text`, stopping as soon as it passes `limit` (strings skipped,
// with their escapes, so a '{' inside a name does not count).
int json_depth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

// Parses `text` as JSON, refusing nesting deeper than kMaxJsonDepth first; `what` names the part in errors.
nlohmann::json parse_bounded(const std::string& path, const std::string& text, const std::string& what) {
  if (json_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    bad(path,
        what + " nests objects or arrays more than " + std::to_string(kMaxJsonDepth) + " deep (the format needs 3)");
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    bad(path, what + " is not JSON: " + e.what());
  }
}

}  // namespace

namespace {

// One tensor's entry of the header, checked on its own (the layout of all of them is checked after).
struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;
};

// A JSON value that is a non-negative integer within int64 (nlohmann parses "16" as unsigned, "-1" as signed,
// "2.5" and "1e3" as floats).
bool non_negative_int(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return *out >= 0;
  }
  return false;
}

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& e) {
  auto fail = [&](const std::string& what) { bad(path, "tensor '" + name + "': " + what); };
  if (!e.is_object()) fail("expected an object { dtype, shape, data_offsets }, got " + std::string(e.type_name()));
  for (const char* k : {"dtype", "shape", "data_offsets"})
    if (!e.contains(k)) fail(std::string("lacks '") + k + "'");
  Entry out;
  out.name = name;
  const auto& dtype = e["dtype"];
  if (!dtype.is_string()) fail("dtype: expected a string, got " + dtype.dump());
  out.dtype = dtype_of(dtype.get<std::string>(), path + ": tensor '" + name + "'");
  const auto& shape = e["shape"];
  if (!shape.is_array()) fail("shape: expected an array of non-negative integers, got " + shape.dump());
  int64_t numel = 1;
  for (const auto& d : shape) {
    int64_t n = 0;
    if (!non_negative_int(d, &n)) fail("shape: expected non-negative integers, got " + shape.dump());
    if (__builtin_mul_overflow(numel, n, &numel)) fail("shape " + shape.dump() + " has more elements than int64 holds");
    out.shape.push_back(n);
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(c10::elementSize(out.dtype)), &bytes))
    fail("shape " + shape.dump() + " needs more bytes than int64 holds");
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !non_negative_int(off[0], &out.begin) ||
      !non_negative_int(off[1], &out.end) || out.begin > out.end)
    fail("data_offsets: expected [begin, end], non-negative integers with begin <= end, got " + off.dump());
  if (out.end - out.begin != bytes) {
    fail("data_offsets " + off.dump() + " span " + std::to_string(out.end - out.begin) + " bytes, but " +
         dtype.get<std::string>() + " of shape " + shape.dump() + " needs " + std::to_string(bytes));
  }
  return out;
}

}  // namespace

SafeTensors read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) bad(path, "not found, or not a regular file");
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open");
  f.seekg(0, std::ios::end);
  const int64_t file_size = f.tellg();
  f.seekg(0);
  uint8_t len_bytes[8];
  if (file_size < 8 || !f.read(reinterpret_cast<char*>(len_bytes), 8))
    bad(path, "too short for a header (" + std::to_string(file_size) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  // The format's own bound on the header (safetensors' MAX_HEADER_SIZE), and the file's.
  constexpr uint64_t kMaxHeader = 100u << 20;
  if (header_len > static_cast<uint64_t>(file_size - 8) || header_len > kMaxHeader) {
    bad(path, "header length " + std::to_string(header_len) + " exceeds the " + std::to_string(file_size - 8) +
                  " bytes after the length field" + (header_len > kMaxHeader ? " (and the format's 100 MiB)" : ""));
  }
  std::string header(header_len, '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(header_len))) bad(path, "truncated header");
  const int64_t data_begin = 8 + static_cast<int64_t>(header_len);
  const int64_t data_size = file_size - data_begin;

  const nlohmann::json j = parse_bounded(path, header, "header");
  if (!j.is_object()) bad(path, "header is not a JSON object");

  // Every entry, then the layout: sorted by offset, the tensors tile the data section from 0 to its end, with
  // no gap, no overlap and nothing after (bytes inserted, missing or shared all show here). Nothing is
  // allocated for the data before the header has passed.
  SafeTensors st;
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) bad(path, "__metadata__: expected an object of strings");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          bad(path, "__metadata__." + m.key() + ": expected a string, got " + m.value().dump());
        st.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value()));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry &a = entries[i - 1], &e = entries[i];
    if (e.begin < a.end) {
      bad(path, "tensor '" + e.name + "': data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] overlap those of '" + a.name + "' [" + std::to_string(a.begin) + ", " + std::to_string(a.end) +
                    "]: each tensor needs bytes of its own");
    }
  }
  int64_t at_byte = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin != at_byte) {
      const std::string where = prev ? "where '" + prev->name + "' ends" : std::string("the start of the data section");
      bad(path, "tensor '" + e.name + "': data_offsets begin at byte " + std::to_string(e.begin) + ", expected " +
                    std::to_string(at_byte) + " (" + where + "): " + std::to_string(e.begin - at_byte) +
                    " bytes between belong to no tensor");
    }
    if (e.end > data_size) {
      bad(path, "tensor '" + e.name + "': data_offsets end at byte " + std::to_string(e.end) +
                    ", past the data section's " + std::to_string(data_size) + " bytes (a truncated file?)");
    }
    at_byte = e.end;
    prev = &e;
  }
  if (at_byte != data_size) {
    bad(path, "the data section holds " + std::to_string(data_size) + " bytes but its tensors end at byte " +
                  std::to_string(at_byte) + ": " + std::to_string(data_size - at_byte) +
                  " bytes unaccounted for (bytes appended or inserted, or data_offsets shifted)");
  }
  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    const int64_t n = e.end - e.begin;
    if (n > 0 && !f.read(static_cast<char*>(t.data_ptr()), n)) bad(path, "tensor '" + e.name + "': read failed");
    st.tensors[e.name] = t;
  }
  return st;
}

SafeTensors read_hf_weights(const std::string& path) {
  const std::string suffix = ".index.json";
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return read_safetensors(path);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) bad(path, "not found, or not a regular file");
  // An index maps names to shard files: kilobytes. The bound keeps a hostile one from being read whole.
  if (std::filesystem::file_size(path, ec) > (100u << 20)) bad(path, "larger than 100 MiB: not a shard index");
  std::ifstream f(path);
  if (!f) bad(path, "cannot open");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  nlohmann::json index = parse_bounded(path, text, "the index");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    bad(path, "no weight_map object");
  const std::string dir = path.substr(0, path.find_last_of('/') + 1);
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string()) bad(path, "weight_map entry '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos) bad(path, "shard '" + shard + "' is not a file beside the index");
    by_shard[shard].push_back(it.key());
  }
  SafeTensors out;
  for (const auto& [shard, names] : by_shard) {
    SafeTensors st = read_safetensors(dir + shard);
    for (const std::string& name : names) {
      auto t = st.tensors.find(name);
      if (t == st.tensors.end()) bad(dir + shard, "lacks '" + name + "', which the index places there");
      out.tensors[name] = t->second;
    }
    if (st.tensors.size() != names.size()) bad(dir + shard, "holds tensors the index does not list");
  }
  return out;
}

void write_safetensors_atomic(const std::string& path, const SafeTensors& st) {
  nlohmann::json j = nlohmann::json::object();
  std::vector<at::Tensor> blobs;
  int64_t offset = 0;
  for (const auto& [name, tensor] : st.tensors) {
    at::Tensor t = tensor.detach().cpu().contiguous();
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    j[name] = {
        {"dtype", name_of(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(t);
  }
  if (!st.metadata.empty()) j["__metadata__"] = st.metadata;
  std::string header = j.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes
  uint8_t len_bytes[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) len_bytes[i] = static_cast<uint8_t>(n & 0xff);

  std::vector<std::pair<const char*, size_t>> chunks;
  chunks.emplace_back(reinterpret_cast<const char*>(len_bytes), 8);
  chunks.emplace_back(header.data(), header.size());
  for (const at::Tensor& t : blobs)
    if (t.numel() > 0) chunks.emplace_back(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_atomic(path, chunks);
}

}  // namespace dpsm::core

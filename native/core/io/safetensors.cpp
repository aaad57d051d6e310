#include "safetensors.h"

#include "atomic_file.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

namespace dpsm::core {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw std::runtime_error("safetensors: " + path + ": " + what);
}

at::ScalarType dtype_of(const std::string& s, const std::string& path) {
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
  bad(path, "unsupported dtype " + s);
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

}  // namespace

SafeTensors read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(path, "cannot open");
  f.seekg(0, std::ios::end);
  const int64_t file_size = f.tellg();
  f.seekg(0);
  uint8_t len_bytes[8];
  if (file_size < 8 || !f.read(reinterpret_cast<char*>(len_bytes), 8)) bad(path, "too short for a header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > static_cast<uint64_t>(file_size - 8) || header_len > (100u << 20))
    bad(path, "header length out of range");
  std::string header(header_len, '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(header_len))) bad(path, "truncated header");
  const int64_t data_begin = 8 + static_cast<int64_t>(header_len);
  const int64_t data_size = file_size - data_begin;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    bad(path, std::string("header is not JSON: ") + e.what());
  }
  if (!j.is_object()) bad(path, "header is not a JSON object");
  std::vector<char> data(static_cast<size_t>(data_size));
  if (data_size > 0 && !f.read(data.data(), data_size)) bad(path, "truncated data");

  SafeTensors st;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) bad(path, "__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m)
        if (m.value().is_string()) st.metadata[m.key()] = m.value().get<std::string>();
      continue;
    }
    const auto& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      bad(path, "entry '" + it.key() + "' lacks dtype, shape or data_offsets");
    const at::ScalarType dtype = dtype_of(e["dtype"].get<std::string>(), path);
    std::vector<int64_t> shape = e["shape"].get<std::vector<int64_t>>();
    const auto offsets = e["data_offsets"].get<std::vector<int64_t>>();
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0) bad(path, "negative dimension in '" + it.key() + "'");
      numel *= d;
    }
    if (offsets.size() != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > data_size ||
        offsets[1] - offsets[0] != numel * static_cast<int64_t>(c10::elementSize(dtype)))
      bad(path, "data_offsets of '" + it.key() + "' do not match its shape and dtype");
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (numel > 0) std::memcpy(t.data_ptr(), data.data() + offsets[0], static_cast<size_t>(offsets[1] - offsets[0]));
    st.tensors[it.key()] = t;
  }
  return st;
}

SafeTensors read_hf_weights(const std::string& path) {
  const std::string suffix = ".index.json";
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return read_safetensors(path);
  std::ifstream f(path);
  if (!f) bad(path, "cannot open");
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    bad(path, std::string("not JSON: ") + e.what());
  }
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

// The model families the core knows, by Hugging Face's "model_type", and what every family shares.
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "../io/atomic_file.h"
#include "../io/safetensors.h"
#include "bart.h"
#include "gpt2.h"
#include "language_model.h"
#include "roberta.h"
#include "text_encoder.h"

namespace dpsm::core {

int64_t LanguageModel::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

static std::invalid_argument not_encoder_decoder(const LanguageModel& m, const char* what) {
  return std::invalid_argument(std::string(what) + ": model_type '" + m.config().value("model_type", std::string()) +
                               "' is not an encoder-decoder");
}

at::Tensor LanguageModel::encode(const at::Tensor&, const at::Tensor&) { throw not_encoder_decoder(*this, "encode"); }

std::unique_ptr<LanguageModel::DecoderCache> LanguageModel::start_decoding(const at::Tensor&, const at::Tensor&) {
  throw not_encoder_decoder(*this, "start_decoding");
}

at::Tensor LanguageModel::decode_next(const at::Tensor&, DecoderCache&) {
  throw not_encoder_decoder(*this, "decode_next");
}

void LanguageModel::save_hf(const std::string& dir, int64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& p : named_parameters()) all.emplace_back(p.key(), p.value().detach().to(at::kFloat).cpu());
  for (const auto& b : named_buffers()) all.emplace_back(b.key(), b.value().detach().to(at::kFloat).cpu());
  // Greedy in order, as save_pretrained packs them; a tensor larger than a shard gets one of its own.
  std::vector<SafeTensors> shards(1);
  int64_t size = 0, total = 0;
  for (auto& [name, t] : all) {
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    if (size > 0 && size + bytes > max_shard_bytes) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().tensors[name] = t;
    size += bytes;
    total += bytes;
  }
  auto remove_if_there = [](const fs::path& f) {
    std::error_code ec;
    fs::remove(f, ec);
  };
  auto old_shards = [&] {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("model-", 0) == 0 && n.find("-of-") != std::string::npos && n.size() > 12 &&
          n.compare(n.size() - 12, 12, ".safetensors") == 0)
        out.push_back(e.path());
    }
    return out;
  };
  write_atomic(dir + "/config.json", config().dump(2) + "\n");
  if (shards.size() == 1) {
    shards[0].metadata["format"] = "pt";
    write_safetensors_atomic(dir + "/model.safetensors", shards[0]);
    remove_if_there(dir + "/model.safetensors.index.json");
    for (const auto& f : old_shards()) remove_if_there(f);
    return;
  }
  const auto n = shards.size();
  auto shard_name = [n](size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    return std::string(buf);
  };
  Json weight_map = Json::object();
  std::set<std::string> written;
  for (size_t i = 0; i < n; ++i) {
    shards[i].metadata["format"] = "pt";
    write_safetensors_atomic(dir + "/" + shard_name(i), shards[i]);
    written.insert(shard_name(i));
    for (const auto& [name, t] : shards[i].tensors) weight_map[name] = shard_name(i);
  }
  write_atomic(dir + "/model.safetensors.index.json",
               Json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2) + "\n");
  remove_if_there(dir + "/model.safetensors");
  for (const auto& f : old_shards())
    if (!written.count(f.filename().string())) remove_if_there(f);
}

void copy_hf_tensors(const std::string& path, const std::string& family, const std::map<std::string, at::Tensor>& file,
                     const std::vector<std::pair<std::string, at::Tensor>>& wanted,
                     const std::map<std::string, std::string>& tied) {
  std::vector<std::string> missing, wrong, unexpected;
  std::set<std::string> used;
  std::map<std::string, at::Tensor> by_name;
  at::NoGradGuard no_grad;
  auto describe = [](const std::string& name, const at::Tensor& f, const at::Tensor& m) {
    std::ostringstream os;
    if (f.sizes() != m.sizes())
      os << name << " (file " << f.sizes() << ", model " << m.sizes() << ")";
    else
      os << name << " (file dtype " << f.scalar_type() << ", model " << m.scalar_type() << ")";
    return os.str();
  };
  // Shapes equal exactly (copy_ would broadcast a [1] into a vector), and a floating-point parameter takes
  // floating-point values only. Nothing is copied unless every tensor passes.
  for (const auto& [name, t] : wanted) {
    by_name[name] = t;
    auto it = file.find(name);
    if (it == file.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != t.sizes() || (at::isFloatingType(t.scalar_type()) && !it->second.is_floating_point()))
      wrong.push_back(describe(name, it->second, t));
  }
  // A tied copy (a head stored beside the embedding it shares) must hold the same values: the model has one.
  for (const auto& [copy, source] : tied) {
    auto it = file.find(copy);
    auto src = file.find(source);
    if (it == file.end()) continue;
    used.insert(copy);
    if (src == file.end() || !by_name.count(source)) continue;  // reported as missing
    if (it->second.sizes() != src->second.sizes() || !it->second.is_floating_point()) {
      wrong.push_back(describe(copy, it->second, by_name[source]));
    } else if (!at::equal(it->second.to(at::kDouble), src->second.to(at::kDouble))) {
      wrong.push_back(copy + " (differs from " + source + ", which it is tied to: untied weights are not supported)");
    }
  }
  for (const auto& [k, v] : file)
    if (!used.count(k)) unexpected.push_back(k);
  if (missing.empty() && wrong.empty() && unexpected.empty()) {
    for (const auto& [name, t] : wanted) {
      at::Tensor dst = t;
      dst.copy_(file.at(name).to(t.scalar_type()));
    }
    return;
  }
  std::ostringstream os;
  os << path << " does not match the " << family << " config:";
  auto list = [&](const char* what, const std::vector<std::string>& xs) {
    if (xs.empty()) return;
    os << " " << what << " [";
    for (size_t i = 0; i < xs.size() && i < 8; ++i) os << (i ? ", " : "") << xs[i];
    if (xs.size() > 8) os << ", … " << xs.size() - 8 << " more";
    os << "]";
  };
  list("missing", missing);
  list("mis-shaped", wrong);
  list("unexpected", unexpected);
  throw std::invalid_argument(os.str());
}

std::shared_ptr<LanguageModel> make_model(const Json& hf_config) {
  const std::string type = field<std::string>(hf_config, "model_type");
  // TypeScript bounds the dimensions and the parameter count (lib/models/limits.ts); a model within them can
  // still exceed this machine's memory, which is said as such rather than as the allocator's message.
  auto out_of_memory = [&](const std::string& what) {
    return std::runtime_error("model: allocating the parameters of this " + type + " config failed, out of memory (" +
                              what + ")");
  };
  try {
    if (type == "gpt2") return std::make_shared<GPT2>(gpt2_config_from_hf(hf_config));
    if (type == "bart" || type == "pegasus") return std::make_shared<Bart>(bart_config_from_hf(hf_config));
  } catch (const std::bad_alloc& e) {
    throw out_of_memory(e.what());
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    if (msg.find("can't allocate memory") == std::string::npos) throw;
    throw out_of_memory(msg.substr(0, msg.find('\n')));
  }
  throw std::invalid_argument("model_type: expected gpt2, bart or pegasus, got '" + type + "'");
}

std::shared_ptr<TextEncoder> make_encoder(const Json& hf_config) {
  const std::string type = field<std::string>(hf_config, "model_type");
  if (type == "roberta") return std::make_shared<Roberta>(roberta_config_from_hf(hf_config));
  throw std::invalid_argument("model_type: expected roberta, got '" + type + "'");
}

}  // namespace dpsm::core

#include "gpt2.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/init.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "compat.h"
#include "safetensors.h"

namespace dpsm::core {

GPT2Config gpt2_preset(const std::string& name) {
  GPT2Config c;
  if (name == "tiny") {
    c.n_positions = 256;
    c.n_embd = 128;
    c.n_layer = 4;
    c.n_head = 4;
  } else if (name == "small") {
    // defaults: 12 layers, 768 wide, 12 heads
  } else if (name == "medium") {
    c.n_embd = 1024;
    c.n_layer = 24;
    c.n_head = 16;
  } else if (name == "large") {
    c.n_embd = 1280;
    c.n_layer = 36;
    c.n_head = 20;
  } else {
    throw std::invalid_argument("model.size: expected tiny, small, medium or large, got '" + name + "'");
  }
  return c;
}

void validate_config(const GPT2Config& c) {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
  };
  need(c.vocab_size >= 2, "model.vocabSize: expected an integer >= 2");
  need(c.n_positions >= 2, "model.nPositions: expected an integer >= 2");
  need(c.n_layer >= 1, "model.nLayer: expected an integer >= 1");
  need(c.n_head >= 1, "model.nHead: expected an integer >= 1");
  need(c.n_embd >= 1 && c.n_embd % c.n_head == 0, "model.nEmbd: expected a positive multiple of nHead");
  need(c.dropout >= 0 && c.dropout < 1, "model.dropout: expected a number in [0, 1)");
  need(c.layer_norm_epsilon > 0, "model.layerNormEpsilon: expected a number > 0");
}

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", at::empty({in, out}));
  bias = register_parameter("bias", at::zeros({out}));
}

at::Tensor Conv1DImpl::forward(const at::Tensor& x) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  return at::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

AttentionImpl::AttentionImpl(const GPT2Config& c) : n_head(c.n_head), n_embd(c.n_embd), dropout(c.dropout) {
  c_attn = register_module("c_attn", Conv1D(c.n_embd, 3 * c.n_embd));
  c_proj = register_module("c_proj", Conv1D(c.n_embd, c.n_embd));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), hd = n_embd / n_head;
  const auto qkv = c_attn(x).split(n_embd, -1);
  auto heads = [&](const at::Tensor& t) { return t.view({B, T, n_head, hd}).transpose(1, 2); };
  const at::Tensor y = compat::causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), is_training() ? dropout : 0.0);
  return c_proj(y.transpose(1, 2).contiguous().view({B, T, n_embd}));
}

MLPImpl::MLPImpl(const GPT2Config& c) {
  c_fc = register_module("c_fc", Conv1D(c.n_embd, 4 * c.n_embd));
  c_proj = register_module("c_proj", Conv1D(4 * c.n_embd, c.n_embd));
}

at::Tensor MLPImpl::forward(const at::Tensor& x) { return c_proj(at::gelu(c_fc(x), "tanh")); }

BlockImpl::BlockImpl(const GPT2Config& c) {
  const auto ln = torch::nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_epsilon);
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", Attention(c));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", MLP(c));
  drop = register_module("drop", torch::nn::Dropout(c.dropout));
}

at::Tensor BlockImpl::forward(const at::Tensor& x_in) {
  at::Tensor x = x_in + drop(attn(ln_1(x_in)));
  return x + drop(mlp(ln_2(x)));
}

TransformerImpl::TransformerImpl(const GPT2Config& c) {
  wte = register_module("wte", torch::nn::Embedding(c.vocab_size, c.n_embd));
  wpe = register_module("wpe", torch::nn::Embedding(c.n_positions, c.n_embd));
  drop = register_module("drop", torch::nn::Dropout(c.dropout));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layer; ++i) h->push_back(Block(c));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_epsilon)));
}

GPT2Impl::GPT2Impl(const GPT2Config& c) : config(c) {
  validate_config(c);
  transformer = register_module("transformer", Transformer(c));
}

at::Tensor GPT2Impl::hidden(const at::Tensor& ids) {
  const int64_t T = ids.size(1);
  if (T > config.n_positions) {
    throw std::invalid_argument("sequence length " + std::to_string(T) + " exceeds the model's " +
                                std::to_string(config.n_positions) + " positions");
  }
  const at::Tensor pos = at::arange(T, ids.options().dtype(at::kLong));
  at::Tensor x = transformer->drop(transformer->wte(ids) + transformer->wpe(pos));
  for (const auto& m : *transformer->h) x = m->as<Block>()->forward(x);
  return transformer->ln_f(x);
}

at::Tensor GPT2Impl::logits(const at::Tensor& hidden_states) {
  return at::matmul(hidden_states, transformer->wte->weight.t());
}

void GPT2Impl::init_weights(uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double resid_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    at::Tensor& t = p.value();
    auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    const bool is_ln = name.find(".ln_") != std::string::npos;
    if (is_ln) {
      t.fill_(ends_with(".weight") ? 1.0 : 0.0);
    } else if (ends_with(".bias")) {
      t.zero_();
    } else {
      const bool residual = ends_with("attn.c_proj.weight") || ends_with("mlp.c_proj.weight");
      // Drawn on the CPU from one seeded generator, so the same seed gives the same model on any device.
      t.copy_(at::normal(0.0, residual ? resid_std : 0.02, t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)));
    }
  }
}

int64_t GPT2Impl::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

std::vector<int64_t> generate(GPT2& model, const std::vector<int64_t>& prompt, int64_t max_new, int64_t top_k,
                              double temperature, uint64_t seed) {
  if (prompt.empty()) throw std::invalid_argument("prompt: expected at least one token");
  if (top_k < 1) throw std::invalid_argument("topK: expected an integer >= 1");
  if (!(temperature > 0)) throw std::invalid_argument("temperature: expected a number > 0");
  const bool was_training = model->is_training();
  model->eval();
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Device device = model->parameters().front().device();
  std::vector<int64_t> ids = prompt, out;
  for (int64_t i = 0; i < max_new; ++i) {
    const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), model->config.n_positions);
    const at::Tensor x = at::tensor(std::vector<int64_t>(ids.end() - T, ids.end()), at::kLong).view({1, T}).to(device);
    const at::Tensor last = model->logits(model->hidden(x).select(1, T - 1)).squeeze(0).to(at::kFloat).cpu();
    int64_t next;
    if (top_k == 1) {
      next = last.argmax().item<int64_t>();
    } else {
      const auto top = (last / temperature).topk(std::min<int64_t>(top_k, last.size(0)));
      const at::Tensor pick = at::multinomial(at::softmax(std::get<0>(top), 0), 1, false, gen);
      next = std::get<1>(top)[pick.item<int64_t>()].item<int64_t>();
    }
    ids.push_back(next);
    out.push_back(next);
  }
  if (was_training) model->train();
  return out;
}

std::string hf_config_json(const GPT2Config& c) {
  nlohmann::json j = {
      {"architectures", {"GPT2LMHeadModel"}},
      {"model_type", "gpt2"},
      {"vocab_size", c.vocab_size},
      {"n_positions", c.n_positions},
      {"n_ctx", c.n_positions},
      {"n_embd", c.n_embd},
      {"n_layer", c.n_layer},
      {"n_head", c.n_head},
      {"n_inner", nullptr},
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", c.layer_norm_epsilon},
      {"initializer_range", 0.02},
      {"resid_pdrop", c.dropout},
      {"embd_pdrop", c.dropout},
      {"attn_pdrop", c.dropout},
      {"bos_token_id", 50256},
      {"eos_token_id", 50256},
      {"tie_word_embeddings", true},
      {"scale_attn_weights", true},
      {"torch_dtype", "float32"},
  };
  return j.dump(2) + "\n";
}

GPT2Config config_from_hf_json(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  if (j.value("model_type", "gpt2") != "gpt2")
    throw std::invalid_argument("config.json: model_type is '" + j.value("model_type", "") + "', expected 'gpt2'");
  const std::string act = j.value("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    throw std::invalid_argument("config.json: activation_function '" + act + "' is not GPT-2's GELU (tanh)");
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"].get<int64_t>() != 4 * j.value("n_embd", 768))
    throw std::invalid_argument("config.json: n_inner other than 4·n_embd is not supported");
  GPT2Config c;
  c.vocab_size = j.value("vocab_size", c.vocab_size);
  c.n_positions = j.value("n_positions", c.n_positions);
  c.n_embd = j.value("n_embd", c.n_embd);
  c.n_layer = j.value("n_layer", c.n_layer);
  c.n_head = j.value("n_head", c.n_head);
  c.layer_norm_epsilon = j.value("layer_norm_epsilon", c.layer_norm_epsilon);
  c.dropout = j.value("resid_pdrop", 0.0);
  validate_config(c);
  return c;
}

void save_hf(GPT2& model, const std::string& dir) {
  SafeTensors st;
  for (const auto& p : model->named_parameters()) st.tensors[p.key()] = p.value().detach().to(at::kFloat).cpu();
  st.metadata["format"] = "pt";
  write_safetensors_atomic(dir + "/model.safetensors", st);
  write_file_atomic(dir + "/config.json", hf_config_json(model->config));
}

void load_hf_weights(GPT2& model, const std::string& path) {
  SafeTensors st = read_safetensors(path);
  std::map<std::string, at::Tensor> by_name;
  for (auto& [key, t] : st.tensors) {
    // Buffers of older checkpoints (the causal mask) and the tied head carry no parameters of their own.
    if (key.find(".attn.bias") != std::string::npos || key.find(".attn.masked_bias") != std::string::npos) continue;
    if (key == "lm_head.weight") continue;
    by_name[key.rfind("transformer.", 0) == 0 ? key : "transformer." + key] = t;
  }
  std::vector<std::string> missing, wrong;
  std::set<std::string> used;
  at::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    auto it = by_name.find(p.key());
    if (it == by_name.end()) {
      missing.push_back(p.key());
      continue;
    }
    used.insert(p.key());
    if (it->second.sizes() != p.value().sizes()) {
      std::ostringstream os;
      os << p.key() << " (file " << it->second.sizes() << ", model " << p.value().sizes() << ")";
      wrong.push_back(os.str());
      continue;
    }
    p.value().copy_(it->second.to(p.value().scalar_type()));
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, v] : by_name)
    if (!used.count(k)) unexpected.push_back(k);
  if (!missing.empty() || !wrong.empty() || !unexpected.empty()) {
    std::ostringstream os;
    os << path << " does not match the GPT-2 config:";
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
}

}  // namespace dpsm::core

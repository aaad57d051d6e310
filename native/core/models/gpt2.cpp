#include "gpt2.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/init.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "../io/safetensors.h"
#include "../platform.h"

namespace dpsm::core {

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
  const at::Tensor y =
      platform::causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), is_training() ? dropout : 0.0);
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
  ln_f =
      register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_epsilon)));
}

GPT2::GPT2(const GPT2Config& c) : config_(c) { transformer = register_module("transformer", Transformer(c)); }

at::Tensor GPT2::hidden(const Batch& batch) {
  const at::Tensor& ids = batch.input_ids;
  const int64_t T = ids.size(1);
  if (T > config_.n_positions) {
    throw std::invalid_argument("sequence length " + std::to_string(T) + " exceeds the model's " +
                                std::to_string(config_.n_positions) + " positions");
  }
  const at::Tensor pos = at::arange(T, ids.options().dtype(at::kLong));
  at::Tensor x = transformer->drop(transformer->wte(ids) + transformer->wpe(pos));
  for (const auto& m : *transformer->h) x = m->as<Block>()->forward(x);
  return transformer->ln_f(x);
}

at::Tensor GPT2::logits(const at::Tensor& hidden_states) {
  return at::matmul(hidden_states, transformer->wte->weight.t());
}

LanguageModel::OutputHead GPT2::output_head() { return {transformer->wte->weight, at::Tensor()}; }

void GPT2::init_weights(uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double resid_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
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

Json gpt2_hf_config(const GPT2Config& c) {
  return {
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
}

GPT2Config gpt2_config_from_hf(const Json& j) {
  GPT2Config c;
  c.vocab_size = field<int64_t>(j, "vocab_size");
  c.n_positions = field<int64_t>(j, "n_positions");
  c.n_embd = field<int64_t>(j, "n_embd");
  c.n_layer = field<int64_t>(j, "n_layer");
  c.n_head = field<int64_t>(j, "n_head");
  c.layer_norm_epsilon = field<double>(j, "layer_norm_epsilon");
  c.dropout = field<double>(j, "resid_pdrop");
  return c;
}

void GPT2::load_hf_weights(const std::string& path) {
  SafeTensors st = read_hf_weights(path);
  std::map<std::string, at::Tensor> by_name;
  for (auto& [key, t] : st.tensors) {
    // Buffers of older checkpoints (the causal mask) carry no parameters.
    if (key.find(".attn.bias") != std::string::npos || key.find(".attn.masked_bias") != std::string::npos) continue;
    const bool head = key == "lm_head.weight";
    by_name[head || key.rfind("transformer.", 0) == 0 ? key : "transformer." + key] = t;
  }
  std::vector<std::pair<std::string, at::Tensor>> wanted;
  for (auto& p : named_parameters()) wanted.emplace_back(p.key(), p.value());
  // The head is tied to the token embedding: a stored copy must hold the same values.
  copy_hf_tensors(path, "GPT-2", by_name, wanted, {{"lm_head.weight", "transformer.wte.weight"}});
}

}  // namespace dpsm::core

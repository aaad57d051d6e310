// GPT-2 (Radford et al. 2019) exactly as Hugging Face's GPT2LMHeadModel: learned positions, pre-LayerNorm
// blocks, GELU (tanh), Conv1D weights stored [in, out], causal attention, LM head tied to the token
// embedding. Parameter names are Hugging Face's, so weights move both ways through safetensors.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

namespace dpsm::core {

struct GPT2Config {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  double layer_norm_epsilon = 1e-5;
  double dropout = 0.0;  // embedding, attention and residual dropout (HF: embd/attn/resid_pdrop)
};

// "tiny" (CPU), "small" (124M), "medium" (355M), "large" (774M); throws naming the known sizes otherwise.
GPT2Config gpt2_preset(const std::string& name);
// Throws std::invalid_argument naming the field that makes the config impossible.
void validate_config(const GPT2Config& c);

// y = x·W + b with W stored [in, out], as GPT-2's (and Hugging Face's) Conv1D.
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(int64_t in, int64_t out);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const GPT2Config& c);
  at::Tensor forward(const at::Tensor& x);
  Conv1D c_attn{nullptr}, c_proj{nullptr};
  int64_t n_head, n_embd;
  double dropout;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const GPT2Config& c);
  at::Tensor forward(const at::Tensor& x);
  Conv1D c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(MLP);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const GPT2Config& c);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  MLP mlp{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Block);

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const GPT2Config& c);
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Transformer);

class GPT2Impl : public torch::nn::Module {
 public:
  explicit GPT2Impl(const GPT2Config& c);
  // Final hidden states (after ln_f), [B, T, n_embd], for token ids [B, T].
  at::Tensor hidden(const at::Tensor& ids);
  // Logits [B, T, V] through the tied head.
  at::Tensor logits(const at::Tensor& hidden_states);
  at::Tensor forward(const at::Tensor& ids) { return logits(hidden(ids)); }
  // GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases, unit LayerNorms, and the
  // residual projections (attn.c_proj, mlp.c_proj) at 0.02/√(2·n_layer).
  void init_weights(uint64_t seed);
  int64_t parameter_count();
  GPT2Config config;
  Transformer transformer{nullptr};
};
TORCH_MODULE(GPT2);

// Continues `prompt` by `max_new` tokens: greedy when top_k == 1, else top-k sampling at `temperature` from a
// generator seeded with `seed` (the same text every run). The context is cropped to the model's positions.
std::vector<int64_t> generate(GPT2& model, const std::vector<int64_t>& prompt, int64_t max_new, int64_t top_k,
                              double temperature, uint64_t seed);

// Hugging Face config.json for this model.
std::string hf_config_json(const GPT2Config& c);
// The GPT2Config of a Hugging Face config.json (model_type gpt2, activation gelu_new).
GPT2Config config_from_hf_json(const std::string& json_text);

// Writes <dir>/model.safetensors and <dir>/config.json (Hugging Face layout, tied head omitted), atomically.
void save_hf(GPT2& model, const std::string& dir);
// Loads Hugging Face GPT-2 weights (keys with or without the "transformer." prefix) into `model`; throws
// listing missing, unexpected or mis-shaped tensors.
void load_hf_weights(GPT2& model, const std::string& safetensors_path);

}  // namespace dpsm::core

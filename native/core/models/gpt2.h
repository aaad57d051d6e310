// GPT-2 (Radford et al. 2019) exactly as Hugging Face's GPT2LMHeadModel: learned positions, pre-LayerNorm
// blocks, GELU (tanh), Conv1D weights stored [in, out], causal attention, LM head tied to the token
// embedding. Parameter names are Hugging Face's, so weights move both ways through safetensors.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <string>

#include "language_model.h"

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

// From Hugging Face's config.json fields (validated by lib/models/gpt2.ts), and back.
GPT2Config gpt2_config_from_hf(const Json& j);
Json gpt2_hf_config(const GPT2Config& c);

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

class GPT2 : public LanguageModel {
 public:
  explicit GPT2(const GPT2Config& c);
  at::Tensor hidden(const Batch& batch) override;
  // Through the head tied to the token embedding.
  at::Tensor logits(const at::Tensor& hidden_states) override;
  OutputHead output_head() override;
  Json config() const override { return gpt2_hf_config(config_); }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.n_positions; }
  // GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases, unit LayerNorms, and the
  // residual projections (attn.c_proj, mlp.c_proj) at 0.02/√(2·n_layer).
  void init_weights(uint64_t seed) override;
  // Keys with or without the "transformer." prefix; the tied head and old causal-mask buffers are skipped.
  // Throws listing missing, unexpected or mis-shaped tensors.
  void load_hf_weights(const std::string& safetensors_path) override;

 private:
  GPT2Config config_;
  Transformer transformer{nullptr};
};

}  // namespace dpsm::core

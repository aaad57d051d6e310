// RoBERTa (Liu et al. 2019) as Hugging Face's RobertaModel computes its hidden states: word + learned position
// (numbered from padding_idx + 1 over the non-padding tokens) + token-type embeddings, LayerNorm, then post-LN
// Transformer layers (self-attention, GELU feed-forward). No pooler or LM head is used: a metric reads the hidden
// states. Parameter names are Hugging Face's; a RobertaForMaskedLM checkpoint ("roberta." prefix, lm_head) and
// RobertaModel's pooler load too, their extra tensors unused.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

#include "text_encoder.h"

namespace dpsm::core {

struct RobertaConfig {
  int64_t vocab_size = 0, hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0, intermediate_size = 0;
  int64_t max_position_embeddings = 0, type_vocab_size = 0, pad_token_id = 0;
  double layer_norm_eps = 1e-5;
  std::string hidden_act;
  Json document;
};
RobertaConfig roberta_config_from_hf(const Json& j);

class RobertaLayerImpl : public torch::nn::Module {
 public:
  RobertaLayerImpl(const RobertaConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attention_out{nullptr}, intermediate{nullptr},
      out{nullptr};
  torch::nn::LayerNorm attention_norm{nullptr}, out_norm{nullptr};
  int64_t heads;
  std::string act;
};
TORCH_MODULE(RobertaLayer);

class Roberta : public TextEncoder {
 public:
  explicit Roberta(RobertaConfig c);
  at::Tensor hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask, int64_t layer) override;
  int64_t num_layers() const override { return config_.num_hidden_layers; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  // Positions are numbered from pad_token_id + 1, so the first pad_token_id + 1 rows are never a real token's.
  int64_t max_tokens() const override { return config_.max_position_embeddings - config_.pad_token_id - 1; }
  Json config() const override { return config_.document; }
  void load_hf_weights(const std::string& safetensors_path) override;

 private:
  RobertaConfig config_;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm embedding_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
};

}  // namespace dpsm::core

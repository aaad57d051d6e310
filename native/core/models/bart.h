// BART (Lewis et al. 2020) and PEGASUS (Zhang et al. 2020) exactly as Hugging Face's
// BartForConditionalGeneration and PegasusForConditionalGeneration: one encoder–decoder whose variations are
// read off the checkpoint's config.json — post-LayerNorm with an embedding LayerNorm and learned positions at
// offset 2 (BART), or pre-LayerNorm with final LayerNorms and sinusoidal positions (PEGASUS); the embedding
// scale, activation, sizes and special ids; a shared token embedding tied to the LM head, plus
// final_logits_bias. Parameter names are Hugging Face's, so weights move both ways through safetensors.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

#include "language_model.h"

namespace dpsm::core {

struct BartConfig {
  std::string model_type;  // "bart" or "pegasus"
  int64_t vocab_size = 0, d_model = 0, max_position_embeddings = 0;
  int64_t encoder_layers = 0, decoder_layers = 0, encoder_heads = 0, decoder_heads = 0;
  int64_t encoder_ffn_dim = 0, decoder_ffn_dim = 0;
  int64_t pad_token_id = 0;
  std::string activation;
  double dropout = 0, attention_dropout = 0, activation_dropout = 0, init_std = 0.02;
  bool scale_embedding = false;
  // What the family implies (Hugging Face states these in code, not in config.json).
  bool pre_layer_norm = false;        // PEGASUS: normalise before each sublayer
  bool embedding_layer_norm = false;  // BART: layernorm_embedding after the embeddings
  bool final_layer_norm = false;      // PEGASUS: encoder and decoder end with a LayerNorm
  bool sinusoidal_positions = false;  // PEGASUS: fixed sinusoids; BART: learned, offset 2
  Json document;                      // config.json as given
};
BartConfig bart_config_from_hf(const Json& j);

// Keys and values [N, heads, T, head_dim] kept while decoding one token at a time: self-attention's grow by each
// step's; cross-attention's are computed from the encoder states once.
struct BartKV {
  at::Tensor k, v;
  bool grows = true;
};
struct BartLayerCache {
  BartKV self, cross{at::Tensor(), at::Tensor(), false};
};

class BartAttentionImpl : public torch::nn::Module {
 public:
  BartAttentionImpl(int64_t d_model, int64_t heads, double dropout);
  // Keys and values from `kv` (self-attention: kv = x), and `cache`'s when given; `mask` is added to the scores
  // ([B, 1, Tq|1, Tk]).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& kv, const at::Tensor& mask, BartKV* cache = nullptr);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t heads;
  double dropout;
};
TORCH_MODULE(BartAttention);

class BartLayerImpl : public torch::nn::Module {
 public:
  BartLayerImpl(const BartConfig& c, bool decoder);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& self_mask, const at::Tensor& memory,
                     const at::Tensor& memory_mask, BartLayerCache* cache = nullptr);
  BartAttention self_attn{nullptr}, encoder_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  const BartConfig* c;
};
TORCH_MODULE(BartLayer);

// One stack (encoder or decoder): embeddings, positions, layers, and the family's LayerNorms.
class BartStackImpl : public torch::nn::Module {
 public:
  BartStackImpl(const BartConfig& c, bool decoder);
  // With `caches` (one per layer), `ids` continue a prefix of `past` tokens whose keys and values they hold.
  at::Tensor forward(const at::Tensor& ids, torch::nn::Embedding tokens, const at::Tensor& self_mask,
                     const at::Tensor& memory, const at::Tensor& memory_mask,
                     std::vector<BartLayerCache>* caches = nullptr, int64_t past = 0);
  // Learned (BART, offset 2) or fixed sinusoids that are never trained (PEGASUS), under one name as in HF.
  torch::nn::Embedding embed_positions{nullptr};
  torch::nn::LayerNorm layernorm_embedding{nullptr}, layer_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
  const BartConfig* c;
};
TORCH_MODULE(BartStack);

class BartModelImpl : public torch::nn::Module {
 public:
  explicit BartModelImpl(const BartConfig& c);
  torch::nn::Embedding shared{nullptr};
  BartStack encoder{nullptr}, decoder{nullptr};
};
TORCH_MODULE(BartModel);

class Bart : public LanguageModel {
 public:
  explicit Bart(BartConfig c);
  // The decoder's final hidden states for the batch's encoder inputs (input_ids, attention_mask) and
  // decoder_input_ids.
  at::Tensor hidden(const Batch& batch) override;
  at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) override;
  std::unique_ptr<DecoderCache> start_decoding(const at::Tensor& encoder_states,
                                               const at::Tensor& attention_mask) override;
  at::Tensor decode_next(const at::Tensor& ids, DecoderCache& cache) override;
  at::Tensor logits(const at::Tensor& hidden_states) override;
  OutputHead output_head() override;
  Json config() const override { return config_.document; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  bool is_encoder_decoder() const override { return true; }
  // Hugging Face's: N(0, init_std) linear and embedding weights (the padding row zero), zero biases, unit
  // LayerNorms, zero final_logits_bias; PEGASUS's positions are the fixed sinusoids.
  void init_weights(uint64_t seed) override;
  // Tied copies (encoder/decoder embed_tokens, lm_head) and PEGASUS's stored sinusoids are accepted and not
  // needed; anything missing, unexpected or mis-shaped is listed in the error.
  void load_hf_weights(const std::string& safetensors_path) override;

 private:
  BartConfig config_;
  BartModel model{nullptr};
  at::Tensor final_logits_bias;  // a buffer, as in Hugging Face: saved, never trained
};

}  // namespace dpsm::core

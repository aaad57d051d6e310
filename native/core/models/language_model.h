// What the training loop, the evaluator and generation need of a model, whatever its family: final hidden
// states for a batch, the output projection to the vocabulary, its config document and Hugging Face
// save. A family is one file (e.g. gpt2.cpp) plus its entry in registry.cpp; lib/models/ holds its presets
// and the validation of its config.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../config.h"
#include "../data/batch.h"

namespace dpsm::core {

class LanguageModel : public torch::nn::Module {
 public:
  // Final hidden states [B, T, d] for the batch's inputs.
  virtual at::Tensor hidden(const Batch& batch) = 0;
  // Logits [..., V] of hidden states [..., d] (the output embedding, plus a bias where the family has one).
  virtual at::Tensor logits(const at::Tensor& hidden_states) = 0;
  // The tensors logits() is made of, for the fused head + loss (loss/fused_linear_loss.h): weight [V, d] and
  // bias [V] or undefined. `weight` undefined: a head that is more than a linear map, computed unfused.
  struct OutputHead {
    at::Tensor weight, bias;
  };
  virtual OutputHead output_head() { return {}; }
  // The model's config as Hugging Face's config.json states it (the document it was built from).
  virtual Json config() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;
  // Encoder–decoders read the batch's encoder inputs and decoder inputs; causal models its input_ids alone.
  virtual bool is_encoder_decoder() const { return false; }
  // Encoder–decoders, for generation: the encoder runs once per batch, then the decoder reads one token per
  // step, keeping the keys and values of the prefix it has read so far (what a DecoderCache holds). Causal
  // models throw.
  struct DecoderCache {
    virtual ~DecoderCache() = default;
    // Keeps rows `rows` (int64 [N'], on the model's device) in that order: beam search's reordering.
    virtual void select_rows(const at::Tensor& rows) = 0;
  };
  // The encoder's final states [B, S, d] for input_ids [B, S] under attention_mask [B, S] (1 on real tokens).
  virtual at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask);
  // An empty cache for decoding against encoder states [N, S, d] under their attention_mask [N, S].
  virtual std::unique_ptr<DecoderCache> start_decoding(const at::Tensor& encoder_states,
                                                       const at::Tensor& attention_mask);
  // The decoder's final states [N, d] at the next tokens `ids` [N] after each row's cached prefix, which they
  // extend: what hidden() gives at the last position of the whole prefix.
  virtual at::Tensor decode_next(const at::Tensor& ids, DecoderCache& cache);
  // The family's initialisation, drawn on the CPU from `seed` so every device gets the same weights.
  virtual void init_weights(uint64_t seed) = 0;
  // Hugging Face parameter names ↔ tensors: what save_hf writes and load_hf_weights expects.
  virtual void load_hf_weights(const std::string& safetensors_path) = 0;

  at::Device device() { return parameters().front().device(); }
  int64_t parameter_count();
  // <dir>/config.json and the parameters and persistent buffers in Hugging Face's layout, each file written
  // atomically: one model.safetensors, or — past max_shard_bytes — shards model-0000i-of-0000N.safetensors
  // behind model.safetensors.index.json, as save_pretrained writes them. The other layout's files are removed
  // after the new one is complete.
  void save_hf(const std::string& dir, int64_t max_shard_bytes = kHfMaxShardBytes);
  static constexpr int64_t kHfMaxShardBytes = 5'000'000'000;  // transformers' save_pretrained default, "5GB"
};

// What every family's load_hf_weights ends with: copies each file tensor (named, and filtered of what the family
// ignores, by the caller) into the model's tensor of that name, in the order `wanted` lists them, once all of
// them have the model's exact shape (no broadcasting) and a floating-point dtype where the model's is. `tied`
// maps tensors the file may also hold to the one they share values with (a head tied to the embedding): each
// one present must equal it. Throws naming `path` and `family` and listing the missing, mis-shaped (shape,
// dtype or tied values; file and model shapes given) and unexpected tensors.
void copy_hf_tensors(const std::string& path, const std::string& family, const std::map<std::string, at::Tensor>& file,
                     const std::vector<std::pair<std::string, at::Tensor>>& wanted,
                     const std::map<std::string, std::string>& tied = {});

// A model of the family named by the config document's "model_type" ("gpt2"); throws naming it otherwise.
std::shared_ptr<LanguageModel> make_model(const Json& hf_config);

}  // namespace dpsm::core

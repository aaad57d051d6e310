// What a metric needs of a text encoder (BERTScore: native/core/eval/bertscore.h): the hidden states of a chosen
// layer for a padded batch of token ids. A family is one file (e.g. roberta.cpp) plus its entry in registry.cpp,
// loaded from a Hugging Face checkpoint (config.json + safetensors) as the language models are.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "../config.h"

namespace dpsm::core {

class TextEncoder : public torch::nn::Module {
 public:
  // The states after layer `layer` [B, T, d] (0: the embeddings' output, num_layers(): the last layer's) for
  // input_ids [B, T] under attention_mask [B, T] (1 on real tokens), in evaluation mode without autograd. Layers
  // above `layer` are not run.
  virtual at::Tensor hidden_states(const at::Tensor& input_ids, const at::Tensor& attention_mask, int64_t layer) = 0;
  virtual int64_t num_layers() const = 0;
  virtual int64_t vocab_size() const = 0;
  // Tokens one input may hold, specials included.
  virtual int64_t max_tokens() const = 0;
  virtual Json config() const = 0;
  virtual void load_hf_weights(const std::string& safetensors_path) = 0;
  at::Device device() { return parameters().front().device(); }
};

// An encoder of the family named by the config document's "model_type" ("roberta"); throws naming it otherwise.
std::shared_ptr<TextEncoder> make_encoder(const Json& hf_config);

}  // namespace dpsm::core

#include "roberta.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

#include "../io/safetensors.h"
#include "language_model.h"

namespace dpsm::core {

RobertaConfig roberta_config_from_hf(const Json& j) {
  RobertaConfig c;
  c.vocab_size = field<int64_t>(j, "vocab_size");
  c.hidden_size = field<int64_t>(j, "hidden_size");
  c.num_hidden_layers = field<int64_t>(j, "num_hidden_layers");
  c.num_attention_heads = field<int64_t>(j, "num_attention_heads");
  c.intermediate_size = field<int64_t>(j, "intermediate_size");
  c.max_position_embeddings = field<int64_t>(j, "max_position_embeddings");
  c.type_vocab_size = field<int64_t>(j, "type_vocab_size");
  c.pad_token_id = field<int64_t>(j, "pad_token_id");
  c.layer_norm_eps = field<double>(j, "layer_norm_eps");
  c.hidden_act = field<std::string>(j, "hidden_act");
  c.document = j;
  return c;
}

namespace {
at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "gelu") return at::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
  if (name == "relu") return at::relu(x);
  throw std::invalid_argument("hidden_act: expected gelu, gelu_new or relu, got '" + name + "'");
}
}  // namespace

RobertaLayerImpl::RobertaLayerImpl(const RobertaConfig& c) : heads(c.num_attention_heads), act(c.hidden_act) {
  const int64_t d = c.hidden_size;
  const auto ln = torch::nn::LayerNormOptions({d}).eps(c.layer_norm_eps);
  query = register_module("query", torch::nn::Linear(d, d));
  key = register_module("key", torch::nn::Linear(d, d));
  value = register_module("value", torch::nn::Linear(d, d));
  attention_out = register_module("attention_out", torch::nn::Linear(d, d));
  attention_norm = register_module("attention_norm", torch::nn::LayerNorm(ln));
  intermediate = register_module("intermediate", torch::nn::Linear(d, c.intermediate_size));
  out = register_module("out", torch::nn::Linear(c.intermediate_size, d));
  out_norm = register_module("out_norm", torch::nn::LayerNorm(ln));
}

at::Tensor RobertaLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), d = x.size(2), hd = d / heads;
  auto split = [&](const at::Tensor& t) { return t.view({B, T, heads, hd}).transpose(1, 2); };
  const at::Tensor q = split(query(x)), k = split(key(x)), v = split(value(x));
  // Hugging Face scales the scores, not the queries: the same rounding as theirs.
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(hd)) + mask;
  const at::Tensor context = at::matmul(at::softmax(scores, -1), v).transpose(1, 2).reshape({B, T, d});
  const at::Tensor h = attention_norm(attention_out(context) + x);
  return out_norm(out(activation(act, intermediate(h))) + h);
}

Roberta::Roberta(RobertaConfig c) : config_(std::move(c)) {
  const int64_t d = config_.hidden_size;
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(config_.vocab_size, d));
  position_embeddings =
      register_module("position_embeddings", torch::nn::Embedding(config_.max_position_embeddings, d));
  token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(config_.type_vocab_size, d));
  embedding_norm = register_module("embedding_norm",
                                   torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(config_.layer_norm_eps)));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) layers->push_back(RobertaLayer(config_));
  eval();
}

at::Tensor Roberta::hidden_states(const at::Tensor& ids, const at::Tensor& attention_mask, int64_t layer) {
  if (layer < 0 || layer > config_.num_hidden_layers)
    throw std::invalid_argument("layer: expected 0 to " + std::to_string(config_.num_hidden_layers) + ", got " +
                                std::to_string(layer));
  if (ids.size(1) > max_tokens())
    throw std::invalid_argument("input length " + std::to_string(ids.size(1)) + " exceeds the model's " +
                                std::to_string(max_tokens()) + " tokens");
  at::NoGradGuard no_grad;
  // Positions count the non-padding tokens from padding_idx + 1 (transformers'
  // create_position_ids_from_input_ids): they follow the ids, not the attention mask.
  const at::Tensor real = (ids != config_.pad_token_id).to(at::kLong);
  const at::Tensor positions = at::cumsum(real, 1) * real + config_.pad_token_id;
  const auto dtype = word_embeddings->weight.scalar_type();
  at::Tensor x = word_embeddings(ids) + token_type_embeddings->weight[0] + position_embeddings(positions);
  x = embedding_norm(x);
  // transformers' extended mask: 0 where attended, the dtype's lowest value on padding keys.
  const at::Tensor mask = at::zeros({ids.size(0), 1, 1, ids.size(1)}, x.options())
                              .masked_fill_((attention_mask == 0).view({ids.size(0), 1, 1, ids.size(1)}),
                                            std::numeric_limits<float>::lowest())
                              .to(dtype);
  for (int64_t i = 0; i < layer; ++i) x = layers[i]->as<RobertaLayer>()->forward(x, mask);
  return x;
}

void Roberta::load_hf_weights(const std::string& path) {
  SafeTensors st = read_hf_weights(path);
  std::vector<std::pair<std::string, at::Tensor>> wanted = {
      {"embeddings.word_embeddings.weight", word_embeddings->weight},
      {"embeddings.position_embeddings.weight", position_embeddings->weight},
      {"embeddings.token_type_embeddings.weight", token_type_embeddings->weight},
      {"embeddings.LayerNorm.weight", embedding_norm->weight},
      {"embeddings.LayerNorm.bias", embedding_norm->bias}};
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    auto* l = layers[i]->as<RobertaLayer>();
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, torch::nn::Linear& m) {
      wanted.emplace_back(p + name + ".weight", m->weight);
      wanted.emplace_back(p + name + ".bias", m->bias);
    };
    auto norm = [&](const std::string& name, torch::nn::LayerNorm& m) {
      wanted.emplace_back(p + name + ".weight", m->weight);
      wanted.emplace_back(p + name + ".bias", m->bias);
    };
    linear("attention.self.query", l->query);
    linear("attention.self.key", l->key);
    linear("attention.self.value", l->value);
    linear("attention.output.dense", l->attention_out);
    norm("attention.output.LayerNorm", l->attention_norm);
    linear("intermediate.dense", l->intermediate);
    linear("output.dense", l->out);
    norm("output.LayerNorm", l->out_norm);
  }
  // What a metric does not read: RobertaModel's pooler, RobertaForMaskedLM's head and "roberta." prefix, and
  // the position/token-type id buffers older transformers saved.
  std::map<std::string, at::Tensor> file;
  for (auto& [k, v] : st.tensors) {
    std::string name = k.rfind("roberta.", 0) == 0 ? k.substr(8) : k;
    if (name.rfind("pooler.", 0) == 0 || name.rfind("lm_head.", 0) == 0 || name == "embeddings.position_ids" ||
        name == "embeddings.token_type_ids")
      continue;
    file[name] = v;
  }
  copy_hf_tensors(path, "roberta", file, wanted);
}

}  // namespace dpsm::core

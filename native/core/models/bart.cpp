#include "bart.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "../io/safetensors.h"

namespace dpsm::core {
namespace {

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "gelu") return at::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return at::gelu(x, "tanh");
  if (name == "relu") return at::relu(x);
  if (name == "silu" || name == "swish") return at::silu(x);
  throw std::invalid_argument("activation_function: expected gelu, gelu_new, relu or silu, got '" + name + "'");
}

// PEGASUS's positions: sin of the even feature frequencies in the first half, cos of the odd ones in the
// second (not interleaved), as Hugging Face's PegasusSinusoidalPositionalEmbedding builds them.
at::Tensor sinusoids(int64_t positions, int64_t dim) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor pos = at::arange(positions, f64).unsqueeze(1);
  const at::Tensor j = at::arange(dim, f64);
  const at::Tensor angle = pos / at::pow(10000.0, 2.0 * at::floor_divide(j, 2) / static_cast<double>(dim));
  const int64_t half = (dim + 1) / 2;
  at::Tensor out = at::empty({positions, dim}, f64);
  out.narrow(1, 0, half)
      .copy_(at::sin(angle.index({at::indexing::Slice(), at::indexing::Slice(0, at::indexing::None, 2)})));
  out.narrow(1, half, dim - half)
      .copy_(at::cos(angle.index({at::indexing::Slice(), at::indexing::Slice(1, at::indexing::None, 2)})));
  return out.to(at::kFloat);
}

// An additive mask: 0 where attending is allowed, the dtype's lowest value where not.
at::Tensor additive(const at::Tensor& allowed, at::ScalarType dtype) {
  return at::zeros(allowed.sizes(), allowed.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
}

}  // namespace

BartConfig bart_config_from_hf(const Json& j) {
  BartConfig c;
  c.model_type = field<std::string>(j, "model_type");
  c.vocab_size = field<int64_t>(j, "vocab_size");
  c.d_model = field<int64_t>(j, "d_model");
  c.max_position_embeddings = field<int64_t>(j, "max_position_embeddings");
  c.encoder_layers = field<int64_t>(j, "encoder_layers");
  c.decoder_layers = field<int64_t>(j, "decoder_layers");
  c.encoder_heads = field<int64_t>(j, "encoder_attention_heads");
  c.decoder_heads = field<int64_t>(j, "decoder_attention_heads");
  c.encoder_ffn_dim = field<int64_t>(j, "encoder_ffn_dim");
  c.decoder_ffn_dim = field<int64_t>(j, "decoder_ffn_dim");
  c.pad_token_id = field<int64_t>(j, "pad_token_id");
  c.activation = field<std::string>(j, "activation_function");
  c.dropout = field<double>(j, "dropout");
  c.attention_dropout = field<double>(j, "attention_dropout");
  c.activation_dropout = field<double>(j, "activation_dropout");
  c.init_std = field<double>(j, "init_std");
  c.scale_embedding = field<bool>(j, "scale_embedding");
  const bool pegasus = c.model_type == "pegasus";
  c.pre_layer_norm = pegasus;
  c.embedding_layer_norm = !pegasus;
  c.final_layer_norm = pegasus;
  c.sinusoidal_positions = pegasus;
  c.document = j;
  return c;
}

BartAttentionImpl::BartAttentionImpl(int64_t d_model, int64_t h, double p) : heads(h), dropout(p) {
  q_proj = register_module("q_proj", torch::nn::Linear(d_model, d_model));
  k_proj = register_module("k_proj", torch::nn::Linear(d_model, d_model));
  v_proj = register_module("v_proj", torch::nn::Linear(d_model, d_model));
  out_proj = register_module("out_proj", torch::nn::Linear(d_model, d_model));
}

at::Tensor BartAttentionImpl::forward(const at::Tensor& x, const at::Tensor& kv, const at::Tensor& mask,
                                      BartKV* cache) {
  const int64_t B = x.size(0), Tq = x.size(1), Tk = kv.size(1), d = x.size(2), hd = d / heads;
  auto split = [&](const at::Tensor& t, int64_t T) { return t.view({B, T, heads, hd}).transpose(1, 2); };
  const at::Tensor q = split(q_proj(x) * (1.0 / std::sqrt(static_cast<double>(hd))), Tq);
  at::Tensor k, v;
  if (cache != nullptr && !cache->grows && cache->k.defined()) {
    k = cache->k;
    v = cache->v;
  } else {
    k = split(k_proj(kv), Tk);
    v = split(v_proj(kv), Tk);
    if (cache != nullptr) {
      if (cache->k.defined()) {
        k = at::cat({cache->k, k}, 2);
        v = at::cat({cache->v, v}, 2);
      }
      cache->k = k;
      cache->v = v;
    }
  }
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));
  if (mask.defined()) scores = scores + mask.to(scores.scalar_type());
  at::Tensor p = at::softmax(scores, -1);
  if (is_training() && dropout > 0) p = at::dropout(p, dropout, true);
  return out_proj(at::matmul(p, v).transpose(1, 2).reshape({B, Tq, d}));
}

BartLayerImpl::BartLayerImpl(const BartConfig& cfg, bool decoder) : c(&cfg) {
  const int64_t heads = decoder ? cfg.decoder_heads : cfg.encoder_heads;
  const int64_t ffn = decoder ? cfg.decoder_ffn_dim : cfg.encoder_ffn_dim;
  const auto ln = torch::nn::LayerNormOptions({cfg.d_model}).eps(1e-5);
  self_attn = register_module("self_attn", BartAttention(cfg.d_model, heads, cfg.attention_dropout));
  self_attn_layer_norm = register_module("self_attn_layer_norm", torch::nn::LayerNorm(ln));
  if (decoder) {
    encoder_attn = register_module("encoder_attn", BartAttention(cfg.d_model, heads, cfg.attention_dropout));
    encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", torch::nn::LayerNorm(ln));
  }
  fc1 = register_module("fc1", torch::nn::Linear(cfg.d_model, ffn));
  fc2 = register_module("fc2", torch::nn::Linear(ffn, cfg.d_model));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(ln));
}

at::Tensor BartLayerImpl::forward(const at::Tensor& x_in, const at::Tensor& self_mask, const at::Tensor& memory,
                                  const at::Tensor& memory_mask, BartLayerCache* cache) {
  const bool pre = c->pre_layer_norm;
  const bool train = is_training();
  auto drop = [&](const at::Tensor& t, double p) { return train && p > 0 ? at::dropout(t, p, true) : t; };
  // One residual sublayer, normalised before (PEGASUS) or after (BART).
  auto sublayer = [&](const at::Tensor& x, torch::nn::LayerNorm& norm, const std::function<at::Tensor(at::Tensor)>& f) {
    at::Tensor y = drop(f(pre ? norm(x) : x), c->dropout) + x;
    return pre ? y : norm(y);
  };
  BartKV* self_kv = cache != nullptr ? &cache->self : nullptr;
  BartKV* cross_kv = cache != nullptr ? &cache->cross : nullptr;
  at::Tensor x = sublayer(x_in, self_attn_layer_norm,
                          [&](const at::Tensor& h) { return self_attn->forward(h, h, self_mask, self_kv); });
  if (!encoder_attn.is_empty())
    x = sublayer(x, encoder_attn_layer_norm,
                 [&](const at::Tensor& h) { return encoder_attn->forward(h, memory, memory_mask, cross_kv); });
  return sublayer(x, final_layer_norm, [&](const at::Tensor& h) {
    return fc2(drop(activation(c->activation, fc1(h)), c->activation_dropout));
  });
}

BartStackImpl::BartStackImpl(const BartConfig& cfg, bool decoder) : c(&cfg) {
  const int64_t n_pos = cfg.max_position_embeddings + (cfg.sinusoidal_positions ? 0 : 2);
  embed_positions = register_module("embed_positions", torch::nn::Embedding(n_pos, cfg.d_model));
  if (cfg.sinusoidal_positions) {
    at::NoGradGuard no_grad;
    embed_positions->weight.copy_(sinusoids(n_pos, cfg.d_model));
    embed_positions->weight.requires_grad_(false);
  }
  const auto ln = torch::nn::LayerNormOptions({cfg.d_model}).eps(1e-5);
  if (cfg.embedding_layer_norm) layernorm_embedding = register_module("layernorm_embedding", torch::nn::LayerNorm(ln));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < (decoder ? cfg.decoder_layers : cfg.encoder_layers); ++i)
    layers->push_back(BartLayer(cfg, decoder));
  if (cfg.final_layer_norm) layer_norm = register_module("layer_norm", torch::nn::LayerNorm(ln));
}

at::Tensor BartStackImpl::forward(const at::Tensor& ids, torch::nn::Embedding tokens, const at::Tensor& self_mask,
                                  const at::Tensor& memory, const at::Tensor& memory_mask,
                                  std::vector<BartLayerCache>* caches, int64_t past) {
  const int64_t T = ids.size(1);
  if (past + T > c->max_position_embeddings)
    throw std::invalid_argument("sequence length " + std::to_string(past + T) + " exceeds the model's " +
                                std::to_string(c->max_position_embeddings) + " positions");
  const double scale = c->scale_embedding ? std::sqrt(static_cast<double>(c->d_model)) : 1.0;
  const at::Tensor pos = at::arange(past, past + T, ids.options().dtype(at::kLong)) + (c->sinusoidal_positions ? 0 : 2);
  at::Tensor x = tokens(ids) * scale + embed_positions(pos);
  if (!layernorm_embedding.is_empty()) x = layernorm_embedding(x);
  if (is_training() && c->dropout > 0) x = at::dropout(x, c->dropout, true);
  for (size_t i = 0; i < layers->size(); ++i)
    x = layers[i]->as<BartLayer>()->forward(x, self_mask, memory, memory_mask,
                                            caches != nullptr ? &(*caches)[i] : nullptr);
  return layer_norm.is_empty() ? x : layer_norm(x);
}

BartModelImpl::BartModelImpl(const BartConfig& c) {
  // padding_idx as Hugging Face's nn.Embedding(vocab, d, padding_idx): the pad row gets no gradient from the
  // lookups (only from the tied LM head). PEGASUS's decoder starts with the pad id, so without it the start
  // token's embedding trained where transformers' never does (test/seq2seq-grad.test.ts).
  shared = register_module(
      "shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.d_model).padding_idx(c.pad_token_id)));
  encoder = register_module("encoder", BartStack(c, false));
  decoder = register_module("decoder", BartStack(c, true));
}

Bart::Bart(BartConfig c) : config_(std::move(c)) {
  model = register_module("model", BartModel(config_));
  final_logits_bias = register_buffer("final_logits_bias", at::zeros({1, config_.vocab_size}));
}

// Padding keys are masked for every query, in the encoder's self-attention and the decoder's cross-attention.
static at::Tensor padding_mask(const at::Tensor& attention_mask, at::ScalarType dtype) {
  return additive((attention_mask != 0).unsqueeze(1).unsqueeze(1), dtype);
}

at::Tensor Bart::hidden(const Batch& b) {
  const at::Tensor& dec = b.decoder_input_ids;
  const at::Tensor mask = b.attention_mask.defined() ? b.attention_mask : at::ones_like(b.input_ids);
  const auto dtype = model->shared->weight.scalar_type();
  const at::Tensor memory = encode(b.input_ids, mask);
  const int64_t T = dec.size(1);
  const at::Tensor causal = at::ones({T, T}, dec.options().dtype(at::kBool)).tril();
  return model->decoder->forward(dec, model->shared, additive(causal.view({1, 1, T, T}), dtype), memory,
                                 padding_mask(mask, dtype));
}

at::Tensor Bart::encode(const at::Tensor& src, const at::Tensor& attention_mask) {
  const at::Tensor mask = padding_mask(attention_mask, model->shared->weight.scalar_type());
  return model->encoder->forward(src, model->shared, mask, at::Tensor(), at::Tensor());
}

namespace {
struct BartDecoderCache : LanguageModel::DecoderCache {
  at::Tensor memory, memory_mask;
  std::vector<BartLayerCache> layers;
  int64_t length = 0;
  void select_rows(const at::Tensor& rows) override {
    memory = memory.index_select(0, rows);
    memory_mask = memory_mask.index_select(0, rows);
    for (BartLayerCache& l : layers)
      for (BartKV* kv : {&l.self, &l.cross})
        if (kv->k.defined()) {
          kv->k = kv->k.index_select(0, rows);
          kv->v = kv->v.index_select(0, rows);
        }
  }
};
}  // namespace

std::unique_ptr<LanguageModel::DecoderCache> Bart::start_decoding(const at::Tensor& memory,
                                                                  const at::Tensor& attention_mask) {
  auto c = std::make_unique<BartDecoderCache>();
  c->memory = memory;
  c->memory_mask = padding_mask(attention_mask, model->shared->weight.scalar_type());
  c->layers.resize(config_.decoder_layers);
  return c;
}

at::Tensor Bart::decode_next(const at::Tensor& ids, DecoderCache& cache) {
  auto& c = dynamic_cast<BartDecoderCache&>(cache);
  // The new token may attend to the whole prefix, so its self-attention needs no mask.
  const at::Tensor h = model->decoder->forward(ids.view({-1, 1}), model->shared, at::Tensor(), c.memory, c.memory_mask,
                                               &c.layers, c.length);
  ++c.length;
  return h.select(1, 0);
}

at::Tensor Bart::logits(const at::Tensor& hidden_states) {
  return at::matmul(hidden_states, model->shared->weight.t()) + final_logits_bias.to(hidden_states.scalar_type());
}

LanguageModel::OutputHead Bart::output_head() { return {model->shared->weight, final_logits_bias.view({-1})}; }

void Bart::init_weights(uint64_t seed) {
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    at::Tensor& t = p.value();
    auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (!t.requires_grad()) continue;  // PEGASUS's sinusoids
    if (name.find("layer_norm") != std::string::npos || name.find("layernorm") != std::string::npos) {
      t.fill_(ends_with(".weight") ? 1.0 : 0.0);
    } else if (ends_with(".bias")) {
      t.zero_();
    } else {
      // Drawn on the CPU from one seeded generator, so the same seed gives the same model on any device.
      t.copy_(at::normal(0.0, config_.init_std, t.sizes(), gen, f32));
    }
  }
  model->shared->weight[config_.pad_token_id].zero_();
  final_logits_bias.zero_();
}

void Bart::load_hf_weights(const std::string& path) {
  SafeTensors st = read_hf_weights(path);
  // Copies of the shared embedding (transformers ties them to it): each one stored must equal it.
  const std::map<std::string, std::string> tied = {{"model.encoder.embed_tokens.weight", "model.shared.weight"},
                                                   {"model.decoder.embed_tokens.weight", "model.shared.weight"},
                                                   {"lm_head.weight", "model.shared.weight"}};
  // Alphabetical, so the error lists a checkpoint's tensors as its index does.
  std::map<std::string, at::Tensor> wanted;
  for (auto& p : named_parameters())
    if (p.value().requires_grad()) wanted[p.key()] = p.value();
  for (auto& b : named_buffers()) wanted[b.key()] = b.value();
  std::map<std::string, at::Tensor> file;
  for (auto& [k, v] : st.tensors) {
    const bool fixed_positions = config_.sinusoidal_positions && k.find("embed_positions.weight") != std::string::npos;
    if (!fixed_positions) file[k] = v;
  }
  copy_hf_tensors(path, config_.model_type, file, {wanted.begin(), wanted.end()}, tied);
}

}  // namespace dpsm::core

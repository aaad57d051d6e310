// The model families the core knows, by Hugging Face's "model_type", and what every family shares.
#include <stdexcept>

#include "../io/atomic_file.h"
#include "../io/safetensors.h"
#include "bart.h"
#include "gpt2.h"
#include "language_model.h"

namespace dpsm::core {

int64_t LanguageModel::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

static std::invalid_argument not_encoder_decoder(const LanguageModel& m, const char* what) {
  return std::invalid_argument(std::string(what) + ": model_type '" + m.config().value("model_type", std::string()) +
                               "' is not an encoder-decoder");
}

at::Tensor LanguageModel::encode(const at::Tensor&, const at::Tensor&) { throw not_encoder_decoder(*this, "encode"); }

std::unique_ptr<LanguageModel::DecoderCache> LanguageModel::start_decoding(const at::Tensor&, const at::Tensor&) {
  throw not_encoder_decoder(*this, "start_decoding");
}

at::Tensor LanguageModel::decode_next(const at::Tensor&, DecoderCache&) {
  throw not_encoder_decoder(*this, "decode_next");
}

void LanguageModel::save_hf(const std::string& dir) {
  SafeTensors st;
  for (const auto& p : named_parameters()) st.tensors[p.key()] = p.value().detach().to(at::kFloat).cpu();
  for (const auto& b : named_buffers()) st.tensors[b.key()] = b.value().detach().to(at::kFloat).cpu();
  st.metadata["format"] = "pt";
  write_safetensors_atomic(dir + "/model.safetensors", st);
  write_atomic(dir + "/config.json", config().dump(2) + "\n");
}

std::shared_ptr<LanguageModel> make_model(const Json& hf_config) {
  const std::string type = field<std::string>(hf_config, "model_type");
  if (type == "gpt2") return std::make_shared<GPT2>(gpt2_config_from_hf(hf_config));
  if (type == "bart" || type == "pegasus") return std::make_shared<Bart>(bart_config_from_hf(hf_config));
  throw std::invalid_argument("model_type: expected gpt2, bart or pegasus, got '" + type + "'");
}

}  // namespace dpsm::core

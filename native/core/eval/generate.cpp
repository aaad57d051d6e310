#include "generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>

namespace dpsm::core {

GenerateOptions generate_options_from_json(const Json& j) {
  GenerateOptions o;
  o.max_new_tokens = field<int64_t>(j, "maxNewTokens");
  o.top_k = field<int64_t>(j, "topK");
  o.temperature = field<double>(j, "temperature");
  o.seed = field<uint64_t>(j, "seed");
  return o;
}

std::vector<int64_t> generate(LanguageModel& model, const std::vector<int64_t>& prompt, const GenerateOptions& o) {
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const at::Device device = model.device();
  std::vector<int64_t> ids = prompt, out;
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), model.max_positions());
    Batch b;
    b.input_ids = at::tensor(std::vector<int64_t>(ids.end() - T, ids.end()), at::kLong).view({1, T}).to(device);
    const at::Tensor last = model.logits(model.hidden(b).select(1, T - 1)).squeeze(0).to(at::kFloat).cpu();
    int64_t next;
    if (o.top_k == 1) {
      next = last.argmax().item<int64_t>();
    } else {
      const auto top = (last / o.temperature).topk(std::min<int64_t>(o.top_k, last.size(0)));
      const at::Tensor pick = at::multinomial(at::softmax(std::get<0>(top), 0), 1, false, gen);
      next = std::get<1>(top)[pick.item<int64_t>()].item<int64_t>();
    }
    ids.push_back(next);
    out.push_back(next);
  }
  if (was_training) model.train();
  return out;
}

}  // namespace dpsm::core

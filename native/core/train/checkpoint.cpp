#include "checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "../io/safetensors.h"
#include "../platform.h"

namespace dpsm::core {
namespace {

namespace fs = std::filesystem;

std::string exact(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

// The generators a step draws from: the CPU's (dropout on the CPU, sampling) and, on CUDA, the device's.
at::Tensor rng_state(at::Generator g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}
void set_rng_state(at::Generator g, const at::Tensor& s) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(s);
}

}  // namespace

void save_checkpoint(const std::string& dir, LanguageModel& model, const AdamW& optim, const TrainingState& state,
                     const std::string& fingerprint) {
  fs::create_directories(dir);
  SafeTensors st;
  for (size_t i = 0; i < optim.params.size(); ++i) {
    st.tensors["model." + optim.names[i]] = optim.params[i].detach();
    st.tensors["optim.exp_avg." + optim.names[i]] = optim.exp_avg[i];
    st.tensors["optim.exp_avg_sq." + optim.names[i]] = optim.exp_avg_sq[i];
  }
  st.tensors["rng.cpu"] = rng_state(at::detail::getDefaultCPUGenerator());
  const at::Device device = model.device();
  if (const auto g = platform::default_cuda_generator(device)) st.tensors["rng.cuda"] = rng_state(*g);
  st.metadata = {
      {"format", "dpsm-native training state"},
      {"fingerprint", fingerprint},
      {"step", std::to_string(state.step)},
      {"epoch", std::to_string(state.epoch)},
      {"cursor", std::to_string(state.cursor)},
      {"tokens_seen", std::to_string(state.tokens_seen)},
      {"bad_evals", std::to_string(state.bad_evals)},
      {"best_step", std::to_string(state.best_step)},
      {"best_nll", exact(state.best_nll)},
      {"has_best", state.has_best ? "1" : "0"},
      {"elapsed_s", exact(state.elapsed_s)},
  };
  write_safetensors_atomic(dir + "/training_state.safetensors", st);
  model.save_hf(dir);
}

bool load_checkpoint(const std::string& run_dir, AdamW& optim, TrainingState& state, const std::string& fingerprint,
                     const at::Device& device) {
  if (run_dir.empty()) return false;
  const std::string path = run_dir + "/last/training_state.safetensors";
  if (!fs::exists(path)) return false;
  SafeTensors st = read_safetensors(path);
  if (st.metadata["fingerprint"] != fingerprint) {
    throw std::invalid_argument("runDir: " + run_dir + " holds a checkpoint of a different run (" +
                                st.metadata["fingerprint"] + "); use another runDir or delete it");
  }
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < optim.params.size(); ++i) {
    at::Tensor p = optim.params[i];
    p.copy_(st.tensors.at("model." + optim.names[i]));
    optim.exp_avg[i].copy_(st.tensors.at("optim.exp_avg." + optim.names[i]));
    optim.exp_avg_sq[i].copy_(st.tensors.at("optim.exp_avg_sq." + optim.names[i]));
  }
  set_rng_state(at::detail::getDefaultCPUGenerator(), st.tensors.at("rng.cpu"));
  if (const auto g = platform::default_cuda_generator(device); g && st.tensors.count("rng.cuda"))
    set_rng_state(*g, st.tensors.at("rng.cuda"));
  const auto& m = st.metadata;
  state.step = std::stoll(m.at("step"));
  state.epoch = std::stoll(m.at("epoch"));
  state.cursor = std::stoll(m.at("cursor"));
  state.tokens_seen = std::stoll(m.at("tokens_seen"));
  state.bad_evals = std::stoll(m.at("bad_evals"));
  state.best_step = std::stoll(m.at("best_step"));
  state.best_nll = std::stod(m.at("best_nll"));
  state.has_best = m.at("has_best") == "1";
  state.elapsed_s = std::stod(m.at("elapsed_s"));
  return true;
}

}  // namespace dpsm::core

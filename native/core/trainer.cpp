#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/utils/clip_grad.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "compat.h"
#include "safetensors.h"

namespace dpsm::core {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A generator for one purpose and one index (an epoch, a step): the same sequence on every run and device.
at::Generator seeded(uint64_t seed, uint64_t salt, uint64_t index) {
  return at::detail::createCPUGenerator(seed * 0x9E3779B97F4A7C15ull ^ (salt << 48) ^ index);
}
constexpr uint64_t kSaltData = 1, kSaltNoise = 2;

int64_t peak_memory(const at::Device& d) {
#if defined(DPSM_WITH_CUDA)
  if (d.is_cuda()) return compat::cuda_peak_allocated(d.index());
#else
  (void)d;
#endif
  return compat::proc_memory_bytes("VmHWM");
}

}  // namespace

Trainer::Trainer(GPT2 model, TrainConfig config, Sequences train, Sequences valid)
    : model_(std::move(model)), cfg_(std::move(config)), train_(std::move(train)), valid_(std::move(valid)),
      device_(model_->parameters().front().device()) {
  auto need = [](bool ok, const std::string& m) {
    if (!ok) throw std::invalid_argument(m);
  };
  need(cfg_.batch_size >= 1, "batchSize: expected an integer >= 1");
  need(cfg_.grad_accum >= 1, "gradAccumulation: expected an integer >= 1");
  need(cfg_.max_steps >= 1, "maxSteps: expected an integer >= 1");
  need(cfg_.warmup_steps >= 0, "lrWarmupSteps: expected an integer >= 0");
  need(cfg_.lr > 0 && std::isfinite(cfg_.lr), "lr: expected a finite number > 0");
  need(cfg_.eval_every >= 1, "evalEvery: expected an integer >= 1");
  need(train_.count() >= cfg_.batch_size,
       "train data: " + std::to_string(train_.count()) + " sequences, fewer than one batch of " +
           std::to_string(cfg_.batch_size));
  need(valid_.count() >= 1, "validation data: expected at least one sequence");
  need(train_.tokens.size(1) - 1 <= model_->config.n_positions,
       "contextLength: sequences of " + std::to_string(train_.tokens.size(1)) + " tokens need " +
           std::to_string(train_.tokens.size(1) - 1) + " positions, the model has " +
           std::to_string(model_->config.n_positions));
  if (cfg_.loss.kind == "ce" || cfg_.loss.kind == "brier" || cfg_.loss.kind == "spherical" || cfg_.loss.kind == "dpsm") {
    cfg_.loss.fused.spec.kind = parse_kind(cfg_.loss.kind);
    validate_spec(cfg_.loss.fused.spec);
  } else {
    need(cfg_.loss.kind == "label_smoothing" || cfg_.loss.kind == "focal",
         "loss.kind: expected ce, brier, spherical, dpsm, label_smoothing or focal, got '" + cfg_.loss.kind + "'");
  }
  for (auto& p : model_->named_parameters()) {
    names_.push_back(p.key());
    params_.push_back(p.value());
    exp_avg_.push_back(at::zeros_like(p.value()));
    exp_avg_sq_.push_back(at::zeros_like(p.value()));
    decay_.push_back(p.value().dim() >= 2);  // matrices and embeddings decay; biases and LayerNorms do not
  }
  loss_step_ = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device_));
}

std::string Trainer::fingerprint() const {
  std::ostringstream os;
  const GPT2Config& m = model_->config;
  os << "gpt2 " << m.vocab_size << "/" << m.n_positions << "/" << m.n_embd << "/" << m.n_layer << "/" << m.n_head
     << "/" << m.dropout << " | seed " << cfg_.seed << "/" << cfg_.data_seed << " | batch " << cfg_.batch_size << "x"
     << cfg_.grad_accum << " | steps " << cfg_.max_steps << " warmup " << cfg_.warmup_steps << " | lr " << cfg_.lr
     << " min " << cfg_.min_lr_ratio << " wd " << cfg_.weight_decay << " betas " << cfg_.beta1 << "," << cfg_.beta2
     << " eps " << cfg_.eps << " clip " << cfg_.grad_clip << " | loss " << cfg_.loss.kind << " "
     << static_cast<int>(cfg_.loss.fused.spec.schedule) << " " << cfg_.loss.fused.spec.warmup_steps << " "
     << cfg_.loss.fused.spec.alpha << " " << cfg_.loss.smoothing << " " << cfg_.loss.focal_gamma << " | noise "
     << cfg_.noise_step_fraction << "/" << cfg_.noise_token_fraction << " | bf16 " << cfg_.bf16 << " | data "
     << train_.count() << "x" << train_.tokens.size(1);
  return os.str();
}

at::Tensor Trainer::next_batch_rows() {
  const int64_t S = train_.count(), B = cfg_.batch_size;
  if (cursor_ + B > S) {  // the epoch's remainder (< one batch) is skipped
    ++epoch_;
    cursor_ = 0;
  }
  if (perm_epoch_ != epoch_) {
    perm_ = at::randperm(S, seeded(cfg_.data_seed, kSaltData, static_cast<uint64_t>(epoch_)),
                         at::TensorOptions().dtype(at::kLong));
    perm_epoch_ = epoch_;
  }
  at::Tensor rows = perm_.narrow(0, cursor_, B);
  cursor_ += B;
  return rows;
}

void Trainer::corrupt_targets(at::Tensor& targets) {
  at::Generator gen = seeded(cfg_.data_seed, kSaltNoise, static_cast<uint64_t>(step_));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor t = targets.cpu();
  const at::Tensor pick = (at::rand(t.sizes(), gen, f32) < cfg_.noise_token_fraction) & (t != cfg_.loss.fused.ignore_index);
  const at::Tensor random = at::randint(0, model_->config.vocab_size, t.sizes(), gen, at::TensorOptions().dtype(at::kLong));
  targets = at::where(pick, random, t).to(targets.device());
}

at::Tensor Trainer::compute_loss(const at::Tensor& logits, const at::Tensor& targets) {
  const std::string& kind = cfg_.loss.kind;
  const int64_t ignore = cfg_.loss.fused.ignore_index;
  if (kind == "label_smoothing") {
    return at::cross_entropy_loss(logits.to(at::kFloat), targets, {}, at::Reduction::Mean, ignore, cfg_.loss.smoothing);
  }
  if (kind == "focal") {
    // Focal loss (Lin et al. 2017) on the target: −(1 − p_y)^γ · log p_y, mean over non-ignored tokens.
    const at::Tensor keep = targets != ignore;
    const at::Tensor safe = at::where(keep, targets, at::zeros_like(targets));
    const at::Tensor log_py = at::log_softmax(logits.to(at::kFloat), -1).gather(1, safe.unsqueeze(1)).squeeze(1);
    const at::Tensor per = -(1.0 - log_py.exp()).pow(cfg_.loss.focal_gamma) * log_py;
    return (per * keep).sum() / keep.sum().clamp_min(1);
  }
  // The LM head's output is saved by nothing else, so the fused gradient may overwrite it.
  return dpsm_loss(logits, targets, loss_step_, cfg_.loss.fused, /*inplace_grad=*/true);
}

double Trainer::lr_at(int64_t step) const {
  if (cfg_.warmup_steps > 0 && step < cfg_.warmup_steps)
    return cfg_.lr * static_cast<double>(step + 1) / static_cast<double>(cfg_.warmup_steps);
  const double span = std::max<int64_t>(1, cfg_.max_steps - cfg_.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - cfg_.warmup_steps) / span);
  const double min_lr = cfg_.lr * cfg_.min_lr_ratio;
  return min_lr + 0.5 * (cfg_.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

// AdamW (Loshchilov & Hutter), as torch.optim.AdamW: decoupled decay p ← p(1 − lr·wd), bias-corrected moments.
// Written out so its state (two tensors per parameter, keyed by parameter name) is plain to checkpoint.
void Trainer::adamw_step(double lr) {
  at::NoGradGuard no_grad;
  const double t = static_cast<double>(step_ + 1);
  const double bc1 = 1.0 - std::pow(cfg_.beta1, t), bc2 = 1.0 - std::pow(cfg_.beta2, t);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    exp_avg_[i].mul_(cfg_.beta1).add_(g, 1.0 - cfg_.beta1);
    exp_avg_sq_[i].mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    if (decay_[i] && cfg_.weight_decay > 0) p.mul_(1.0 - lr * cfg_.weight_decay);
    const at::Tensor denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bc2)).add_(cfg_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bc1);
  }
}

void Trainer::save_checkpoint(const std::string& which, double elapsed_s) {
  const std::string dir = cfg_.run_dir + "/" + which;
  fs::create_directories(dir);
  SafeTensors st;
  for (size_t i = 0; i < params_.size(); ++i) {
    st.tensors["model." + names_[i]] = params_[i].detach();
    st.tensors["optim.exp_avg." + names_[i]] = exp_avg_[i];
    st.tensors["optim.exp_avg_sq." + names_[i]] = exp_avg_sq_[i];
  }
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    st.tensors["rng.cpu"] = g.get_state();
  }
#if defined(DPSM_WITH_CUDA)
  if (device_.is_cuda()) {
    at::Generator g = at::cuda::detail::getDefaultCUDAGenerator(device_.index());
    std::lock_guard<std::mutex> lock(g.mutex());
    st.tensors["rng.cuda"] = g.get_state();
  }
#endif
  auto num = [](double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  st.metadata = {
      {"format", "dpsm-native training state"},
      {"fingerprint", fingerprint()},
      {"step", std::to_string(step_)},
      {"epoch", std::to_string(epoch_)},
      {"cursor", std::to_string(cursor_)},
      {"tokens_seen", std::to_string(tokens_seen_)},
      {"bad_evals", std::to_string(bad_evals_)},
      {"best_step", std::to_string(best_step_)},
      {"best_nll", num(best_nll_)},
      {"has_best", has_best_ ? "1" : "0"},
      {"elapsed_s", num(elapsed_s)},
  };
  // Each file is replaced atomically; the training state alone is enough to resume.
  write_safetensors_atomic(dir + "/training_state.safetensors", st);
  save_hf(model_, dir);
}

bool Trainer::try_resume() {
  if (cfg_.run_dir.empty()) return false;
  const std::string path = cfg_.run_dir + "/last/training_state.safetensors";
  if (!fs::exists(path)) return false;
  SafeTensors st = read_safetensors(path);
  if (st.metadata["fingerprint"] != fingerprint()) {
    throw std::invalid_argument("runDir: " + cfg_.run_dir + " holds a checkpoint of a different run (" +
                                st.metadata["fingerprint"] + "); use another runDir or delete it");
  }
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    params_[i].copy_(st.tensors.at("model." + names_[i]));
    exp_avg_[i].copy_(st.tensors.at("optim.exp_avg." + names_[i]));
    exp_avg_sq_[i].copy_(st.tensors.at("optim.exp_avg_sq." + names_[i]));
  }
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(st.tensors.at("rng.cpu"));
  }
#if defined(DPSM_WITH_CUDA)
  if (device_.is_cuda() && st.tensors.count("rng.cuda")) {
    at::Generator g = at::cuda::detail::getDefaultCUDAGenerator(device_.index());
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(st.tensors.at("rng.cuda"));
  }
#endif
  step_ = std::stoll(st.metadata.at("step"));
  epoch_ = std::stoll(st.metadata.at("epoch"));
  cursor_ = std::stoll(st.metadata.at("cursor"));
  tokens_seen_ = std::stoll(st.metadata.at("tokens_seen"));
  bad_evals_ = std::stoll(st.metadata.at("bad_evals"));
  best_step_ = std::stoll(st.metadata.at("best_step"));
  best_nll_ = std::stod(st.metadata.at("best_nll"));
  has_best_ = st.metadata.at("has_best") == "1";
  elapsed_before_ = std::stod(st.metadata.at("elapsed_s"));
  loss_step_.fill_(step_);
  return true;
}

void Trainer::fit(const std::function<void(const ProgressRecord&)>& emit, const std::atomic<bool>& abort) {
  if (!try_resume()) {
    // A fresh run: the dropout stream starts from the seed, like the weights.
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(cfg_.seed);
#if defined(DPSM_WITH_CUDA)
    if (device_.is_cuda()) {
      at::Generator cg = at::cuda::detail::getDefaultCUDAGenerator(device_.index());
      std::lock_guard<std::mutex> clock(cg.mutex());
      cg.set_current_seed(cfg_.seed);
    }
#endif
  }
  // Peaks are per run: a process that trains several models reports each one's own high-water mark.
#if defined(DPSM_WITH_CUDA)
  if (device_.is_cuda()) compat::cuda_reset_peak(device_.index());
#endif
  if (!device_.is_cuda()) compat::reset_cpu_peak();
  model_->train();
  const auto t_start = Clock::now();
  auto elapsed = [&] { return elapsed_before_ + std::chrono::duration<double>(Clock::now() - t_start).count(); };
  const int64_t ignore = cfg_.loss.fused.ignore_index;
  std::string reason = "max_steps";

  auto run_eval = [&]() {
    EvalOptions eo;
    eo.batch_size = cfg_.batch_size;
    eo.max_sequences = cfg_.eval_max_sequences;
    eo.autocast_bf16 = cfg_.bf16;
    ProgressRecord r;
    r.type = ProgressRecord::Type::Eval;
    r.step = step_;
    r.eval = evaluate(model_, valid_, eo).front();
    const double nll = r.eval.nll();
    r.improved = !has_best_ || nll < best_nll_;
    if (r.improved) {
      has_best_ = true;
      best_nll_ = nll;
      best_step_ = step_;
      bad_evals_ = 0;
    } else {
      ++bad_evals_;
    }
    r.elapsed_s = elapsed();
    r.peak_memory_bytes = peak_memory(device_);
    r.best_step = best_step_;
    r.best_nll = best_nll_;
    emit(r);
    if (!cfg_.run_dir.empty()) {
      save_checkpoint("last", elapsed());
      if (r.improved) save_checkpoint("best", elapsed());
      ProgressRecord c;
      c.type = ProgressRecord::Type::Checkpoint;
      c.step = step_;
      c.path = cfg_.run_dir + "/last";
      c.improved = r.improved;
      emit(c);
    }
    return cfg_.patience > 0 && bad_evals_ >= cfg_.patience;
  };

  // A run that early-stopped before it was interrupted stays stopped.
  if (cfg_.patience > 0 && bad_evals_ >= cfg_.patience) reason = "early_stopping";
  while (step_ < cfg_.max_steps && reason != "early_stopping") {
    if (abort.load()) {
      reason = "aborted";
      break;
    }
    const auto t0 = Clock::now();
    const double lr = lr_at(step_);
    const bool noisy = cfg_.noise_step_fraction > 0 && cfg_.noise_token_fraction > 0 &&
                       at::rand({1}, seeded(cfg_.data_seed, kSaltNoise, static_cast<uint64_t>(step_) + (1ull << 40)))
                               .item<double>() < cfg_.noise_step_fraction;
    at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device_));
    int64_t tokens = 0;
    for (int64_t micro = 0; micro < cfg_.grad_accum; ++micro) {
      auto [x, y] = lm_batch(train_, next_batch_rows(), ignore, device_);
      if (noisy) corrupt_targets(y);
      tokens += (y != ignore).sum().item<int64_t>();
      at::Tensor logits;
      {
        compat::AutocastBF16 autocast(cfg_.bf16, device_);
        logits = model_->logits(model_->hidden(x));
      }
      at::Tensor loss = compute_loss(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
      (loss / static_cast<double>(cfg_.grad_accum)).backward();
      loss_sum += loss.detach().to(at::kFloat);
    }
    double grad_norm = 0;
    if (cfg_.grad_clip > 0) {
      grad_norm = torch::nn::utils::clip_grad_norm_(params_, cfg_.grad_clip);
    }
    adamw_step(lr);
    for (auto& p : params_) p.mutable_grad() = at::Tensor();
    loss_step_.add_(1);  // one optimiser step: α moves on (never per micro-batch, never in evaluation)
    ++step_;
    tokens_seen_ += tokens;

    ProgressRecord r;
    r.type = ProgressRecord::Type::Step;
    r.step = step_;
    r.loss = loss_sum.item<double>() / static_cast<double>(cfg_.grad_accum);
    r.alpha = alpha_at(cfg_.loss.fused.spec, step_ - 1);  // the α this step's kernel read
    r.lr = lr;
    r.grad_norm = grad_norm;
    r.noisy = noisy;
    r.step_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.tokens_per_s = static_cast<double>(tokens) / (r.step_ms / 1000.0);
    r.tokens_seen = tokens_seen_;
    r.elapsed_s = elapsed();
    r.peak_memory_bytes = peak_memory(device_);
    emit(r);

    if (step_ % cfg_.eval_every == 0 || step_ == cfg_.max_steps) {
      if (run_eval()) {
        reason = "early_stopping";
        break;
      }
    }
  }
  if (reason == "aborted" && !cfg_.run_dir.empty()) save_checkpoint("last", elapsed());
  ProgressRecord done;
  done.type = ProgressRecord::Type::Done;
  done.step = step_;
  done.reason = reason;
  done.elapsed_s = elapsed();
  done.tokens_seen = tokens_seen_;
  done.best_step = best_step_;
  done.best_nll = best_nll_;
  done.peak_memory_bytes = peak_memory(device_);
  emit(done);
}

}  // namespace dpsm::core

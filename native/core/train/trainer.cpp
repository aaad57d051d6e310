#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "../platform.h"

namespace dpsm::core {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> names_of(LanguageModel& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}

// The targets of rows [first, first + rows) of a host batch's targets that are not `ignore`, counted on the host
// from the tensor's memory (no ATen op: the step's op list, test/step-ops.test.ts, holds no item()).
int64_t count_targets(const at::Tensor& targets, int64_t ignore, int64_t first, int64_t rows) {
  const at::Tensor t = targets.to(at::kLong).contiguous();
  const int64_t per_row = t.dim() > 1 ? t.numel() / t.size(0) : 1;
  const int64_t* p = t.data_ptr<int64_t>() + first * per_row;
  return static_cast<int64_t>(rows * per_row - std::count(p, p + rows * per_row, ignore));
}

std::vector<at::Tensor> params_of(LanguageModel& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.value());
  return out;
}

}  // namespace

TrainConfig train_config_from_json(const Json& j) {
  TrainConfig c;
  c.seed = field<uint64_t>(j, "seed");
  c.data_seed = field<uint64_t>(j, "dataSeed");
  c.batch_size = field<int64_t>(j, "batchSize");
  c.grad_accum = field<int64_t>(j, "gradAccumulation");
  c.max_steps = field<int64_t>(j, "maxSteps");
  c.eval_every = field<int64_t>(j, "evalEvery");
  c.eval_max_sequences = field<int64_t>(j, "evalMaxSequences");
  c.patience = field<int64_t>(j, "patience");
  c.run_dir = field<std::string>(j, "runDir");
  c.bf16 = field<std::string>(j, "precision") == "bf16";
  c.optim = optim_config_from_json(j);
  c.objective = objective_from_json(field<Json>(j, "loss"));
  c.label_noise = label_noise_from_json(field<Json>(j, "labelNoise"));
  c.summary_swap = field<double>(j, "summarySwap");
  c.distributed = distributed_config_from_json(field<Json>(j, "distributed"));
  const Json fused_head = field<Json>(j, "fusedHead");  // true, false or "auto": only false turns it off
  c.fused_head = !(fused_head.is_boolean() && !fused_head.get<bool>());
  c.update_ratio_every = field<int64_t>(j, "updateRatioEvery");
  c.document = j;
  return c;
}

Trainer::Trainer(std::shared_ptr<LanguageModel> model, TrainConfig config, std::shared_ptr<const Dataset> train,
                 std::shared_ptr<const Dataset> valid)
    : model_(std::move(model)), cfg_(std::move(config)), train_(std::move(train)), valid_(std::move(valid)),
      device_(model_->device()), optim_(names_of(*model_), params_of(*model_), cfg_.optim),
      dp_(cfg_.distributed, device_),
      sampler_(train_->count(), cfg_.batch_size, cfg_.data_seed, cfg_.distributed.world_size),
      noise_(cfg_.label_noise, cfg_.data_seed, model_->vocab_size(), cfg_.objective.fused.ignore_index) {
  // What lib/ cannot know before the data is prepared, and what would otherwise fail deep inside libtorch.
  auto need = [](bool ok, const std::string& m) {
    if (!ok) throw std::invalid_argument(m);
  };
  const int64_t global_batch = cfg_.batch_size * cfg_.distributed.world_size;
  need(train_->count() >= global_batch, "train data: " + std::to_string(train_->count()) +
                                            " sequences, fewer than one batch of " + std::to_string(global_batch) +
                                            (dp_.active() ? " (batchSize × worldSize)" : ""));
  need(valid_->count() >= 1, "validation data: expected at least one sequence");
  for (const auto* d : {train_.get(), valid_.get()})
    need(d->positions() <= model_->max_positions(),
         "contextLength: sequences of " + std::to_string(d->positions() + 1) + " tokens need " +
             std::to_string(d->positions()) + " positions, the model has " + std::to_string(model_->max_positions()));
  loss_step_ = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device_));
  error_flag_ = at::zeros({}, at::TensorOptions().dtype(at::kInt).device(device_));
}

std::string Trainer::fingerprint() const {
  Json trainer = cfg_.document;
  trainer.erase("runDir");            // where the run lives, not what it is
  trainer.erase("fusedHead");         // how the loss is computed, not which: the same curve to float rounding
  trainer.erase("updateRatioEvery");  // a diagnostic's sampling, not the run
  // Which rank this is and where the ranks meet are not what the run is; how many ranks there are is (it sets
  // the global batch). One process leaves no trace, so its checkpoints resume as they always did.
  if (cfg_.distributed.world_size > 1)
    trainer["distributed"] = Json{{"worldSize", cfg_.distributed.world_size}};
  else
    trainer.erase("distributed");
  return canonical({{"model", model_->config()}, {"trainer", trainer}, {"data", train_->describe()}});
}

void Trainer::checkpoint(const std::string& which, double elapsed_s) {
  TrainingState s = state_;
  s.epoch = sampler_.epoch;
  s.cursor = sampler_.cursor;
  s.elapsed_s = elapsed_s;
  save_checkpoint(cfg_.run_dir, which, *model_, optim_, s, fingerprint());
}

// Returns whether early stopping now ends the run.
bool Trainer::evaluate_and_checkpoint(const std::function<void(const ProgressRecord&)>& emit, double elapsed_s) {
  EvalOptions eo;
  eo.temperatures = {1.0};
  eo.batch_size = cfg_.batch_size;
  eo.max_sequences = cfg_.eval_max_sequences;
  eo.bf16 = cfg_.bf16;
  eo.fused_head = cfg_.fused_head;
  ProgressRecord r;
  r.type = ProgressRecord::Type::Eval;
  r.step = state_.step;
  r.eval = evaluate(*model_, *valid_, eo).front();
  const double nll = r.eval.tokens > 0 ? r.eval.nll : 0.0;
  r.improved = !state_.has_best || nll < state_.best_nll;
  if (r.improved) {
    state_.has_best = true;
    state_.best_nll = nll;
    state_.best_step = state_.step;
    state_.bad_evals = 0;
  } else {
    ++state_.bad_evals;
  }
  r.elapsed_s = elapsed_s;
  r.peak_memory_bytes = platform::peak_memory_bytes(device_);
  r.best_step = state_.best_step;
  r.best_nll = state_.best_nll;
  emit(r);
  if (!cfg_.run_dir.empty()) {
    checkpoint("last", elapsed_s);
    if (r.improved) checkpoint("best", elapsed_s);
    ProgressRecord c;
    c.type = ProgressRecord::Type::Checkpoint;
    c.step = state_.step;
    c.path = cfg_.run_dir + "/last";
    c.improved = r.improved;
    emit(c);
  }
  return cfg_.patience > 0 && state_.bad_evals >= cfg_.patience;
}

bool Trainer::fuses_head(const Objective& objective) {
  return cfg_.fused_head && objective_fuses_head(objective) && model_->output_head().weight.defined();
}

void Trainer::forward_backward(const Objective& objective, const Batch& b, double accumulation, at::Tensor& loss_sum,
                               at::Tensor& component_sum, double weight) {
  const bool fused = fuses_head(objective);
  at::Tensor hidden, logits;
  {
    platform::AutocastBF16 autocast(cfg_.bf16, device_);
    hidden = model_->hidden(b);
    if (!fused) logits = model_->logits(hidden);
  }
  at::Tensor components;
  at::Tensor loss;
  if (fused) {
    // The unfused head's matmul runs in bf16 under autocast: the fused one computes its logits in the same dtype.
    const LanguageModel::OutputHead head = model_->output_head();
    const at::ScalarType dtype = cfg_.bf16 ? at::kBFloat16 : head.weight.scalar_type();
    loss = objective_head_loss(objective, hidden.reshape({-1, hidden.size(-1)}), head.weight, head.bias, dtype,
                               b.targets.reshape({-1}), loss_step_, error_flag_, &components);
  } else {
    loss = objective_loss(objective, logits.reshape({-1, logits.size(-1)}), b.targets.reshape({-1}), loss_step_,
                          error_flag_, &components);
  }
  if (weight != 1.0) loss = loss * weight;
  component_sum += components;
  (loss / accumulation).backward();
  loss_sum += loss.detach().to(at::kFloat);
}

at::Tensor Trainer::update(double lr, int64_t step, bool measure_ratio) {
  RECORD_USER_SCOPE("dpsm::optimizer");
  const at::Tensor norm = cfg_.optim.grad_clip > 0 ? gradient_norm(optim_.params) : at::Tensor();
  optim_.step(lr, step, norm.defined() ? clip_coefficient(norm, cfg_.optim) : at::Tensor(), measure_ratio);
  optim_.zero_grad();
  return norm;
}

at::Tensor Trainer::step_numbers(const at::Tensor& loss_sum, const at::Tensor& component_sum,
                                 const at::Tensor& grad_norm) const {
  const auto f64 = at::kDouble;
  const at::Tensor norm =
      grad_norm.defined() ? grad_norm.to(f64).reshape({1}) : at::zeros({1}, component_sum.options());
  return at::cat({loss_sum.detach().to(f64).reshape({1}), component_sum.to(f64), norm, optim_.update_norms().to(f64),
                  error_flag_.to(f64).reshape({1})});
}

std::pair<double, std::vector<std::pair<std::string, at::Tensor>>> Trainer::gradients(const Batch& b) {
  model_->train();
  optim_.zero_grad();
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device_));
  at::Tensor component_sum = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device_));
  forward_backward(cfg_.objective, b, 1.0, loss_sum, component_sum);
  std::vector<std::pair<std::string, at::Tensor>> grads;
  for (size_t i = 0; i < optim_.params.size(); ++i) {
    const at::Tensor& g = optim_.params[i].grad();
    grads.emplace_back(optim_.names[i], g.defined() ? g.detach().cpu().clone() : at::Tensor());
  }
  optim_.zero_grad();
  return {loss_sum.item<double>(), std::move(grads)};
}

std::vector<std::vector<double>> Trainer::time_steps(const std::vector<Objective>& objectives, int64_t rounds,
                                                     int64_t warmup_rounds, int64_t first_round) {
  // One fixed step at the run's shape: grad_accum micro-batches of batch_size sequences, the first
  // batch_size × grad_accum of the training data (wrapping round when there are fewer), made once on the device,
  // so every objective sees the same tokens and the timing holds no data preparation. Weights and optimiser
  // state move on from step to step (what a step costs does not depend on them).
  std::vector<Batch> micro_batches;
  for (int64_t micro = 0; micro < cfg_.grad_accum; ++micro) {
    const at::Tensor rows =
        (at::arange(cfg_.batch_size, at::TensorOptions().dtype(at::kLong)) + micro * cfg_.batch_size) % train_->count();
    micro_batches.push_back(train_->batch(rows, cfg_.objective.fused.ignore_index, device_));
  }
  const double lr = lr_at(cfg_.optim, cfg_.optim.warmup_steps);
  const size_t n = objectives.size();
  std::vector<std::vector<double>> ms(static_cast<size_t>(rounds), std::vector<double>(n, 0.0));
  model_->train();
  int64_t step = first_round * static_cast<int64_t>(n);
  for (int64_t r = 0; r < warmup_rounds + rounds; ++r) {
    // Each round starts at another objective, so none always runs right after the same one.
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (k + static_cast<size_t>(first_round + r)) % n;
      const auto t0 = Clock::now();
      at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device_));
      at::Tensor component_sum = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device_));
      for (const Batch& b : micro_batches)
        forward_backward(objectives[i], b, static_cast<double>(cfg_.grad_accum), loss_sum, component_sum);
      const at::Tensor norm = update(lr, step, measures_ratio(step));
      ++step;
      // Until its numbers are on the host, the step is not over.
      (void)platform::LaggedRead(step_numbers(loss_sum, component_sum, norm)).get();
      const double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (r >= warmup_rounds) ms[static_cast<size_t>(r - warmup_rounds)][i] = elapsed;
    }
  }
  return ms;
}

void Trainer::fit(const std::function<void(const ProgressRecord&)>& emit, const std::atomic<bool>& abort) {
  // Rank 0 alone writes in run_dir; the others only read the checkpoint every rank resumes from.
  if (dp_.is_root()) remove_stale_temporaries(cfg_.run_dir);
  ResumeLimits limits;
  limits.max_steps = cfg_.max_steps;
  limits.micro_batches_per_step = cfg_.grad_accum;
  limits.position_after = [this](int64_t batches) { return sampler_.position_after(batches); };
  const ResumeResult resume = load_checkpoint(cfg_.run_dir, optim_, state_, fingerprint(), device_, limits);
  for (const std::string& w : resume.warnings) {
    ProgressRecord r;
    r.type = ProgressRecord::Type::Warning;
    r.step = state_.step;
    r.path = resume.from;
    r.message = w;
    emit(r);
  }
  // The dropout stream: a fresh run starts from the seed, like the weights; a resumed one continues the stream
  // its checkpoint saved (rank 0's). Other ranks draw their own, from the seed, the rank and the step, so no two
  // ranks drop the same units (with dropout, their streams after a resume differ from an uninterrupted run's).
  if (!resume.resumed || !dp_.is_root()) {
    const uint64_t seed = dp_.is_root() ? cfg_.seed
                                        : cfg_.seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(dp_.rank())) ^
                                              (static_cast<uint64_t>(state_.step) << 20);
    at::Generator g = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_current_seed(seed);
    }
    if (auto cg = platform::default_cuda_generator(device_)) {
      std::lock_guard<std::mutex> lock(cg->mutex());
      cg->set_current_seed(seed);
    }
  }
  if (resume.resumed) {
    sampler_.epoch = state_.epoch;
    sampler_.cursor = state_.cursor;
    loss_step_.fill_(state_.step);
    if (resume.best_behind && dp_.is_root()) checkpoint("best", state_.elapsed_s);
  }
  // Every rank starts from rank 0's weights (the same seed makes the same weights; this makes sure of it).
  dp_.broadcast_parameters(optim_.params);
  // Peaks are per run: a process that trains several models reports each one's own high-water mark.
  platform::reset_peak_memory(device_);
  model_->train();
  const double elapsed_before = state_.elapsed_s;
  const auto t_start = Clock::now();
  auto elapsed = [&] { return elapsed_before + std::chrono::duration<double>(Clock::now() - t_start).count(); };
  const int64_t ignore = cfg_.objective.fused.ignore_index;
  const int64_t rank_rows = cfg_.batch_size, first_row = dp_.rank() * rank_rows;
  std::string reason = "max_steps";

  // A run that early-stopped before it was interrupted stays stopped.
  bool stop = cfg_.patience > 0 && state_.bad_evals >= cfg_.patience;
  if (stop) reason = "early_stopping";
  // With several ranks a stop asked of any rank is agreed on at the end of a step, so all stop at the same one.
  bool abort_agreed = false;

  // A step's numbers (loss, diagnostics, gradient norm) stay on the device until its record is made, one step
  // late: the host queues step k + 1 before it waits for step k's numbers, so a GPU never idles while the host
  // reads and reports. Nothing else in a step waits for the device (token counts are taken on the host,
  // clipping is decided on the device). The CPU runs the same order (it only delays each record by a step).
  // A step's time is from the device reaching its first operation to its last (platform.h's DeviceMark).
  std::optional<PendingStep> pending;
  auto finish_pending = [&] {
    if (!pending) return;
    PendingStep p = std::move(*pending);
    pending.reset();
    const at::Tensor numbers = p.numbers.get();
    throw_if_target_flagged(numbers[6], model_->vocab_size(), ignore);
    // This rank's sums, then (several ranks) everyone's: loss, CE, Brier, tokens, and whether a stop was asked.
    at::Tensor sums = at::cat({numbers.narrow(0, 0, 3), at::full({2}, 0.0, numbers.options())});
    sums[3] = static_cast<double>(p.tokens);
    sums[4] = p.abort_asked ? 1.0 : 0.0;
    dp_.sum(sums);
    const auto v = sums.accessor<double, 1>();
    const auto n = numbers.accessor<double, 1>();
    const auto tokens = static_cast<int64_t>(v[3]);
    abort_agreed = v[4] > 0;
    state_.tokens_seen += tokens;
    ProgressRecord& r = p.record;
    r.loss = v[0] / static_cast<double>(cfg_.grad_accum * dp_.world_size());
    r.grad_norm = n[3];
    r.ce = v[1] / static_cast<double>(std::max<int64_t>(1, tokens));
    r.brier = v[2] / static_cast<double>(std::max<int64_t>(1, tokens));
    r.has_update_ratio = p.measured_ratio;
    if (p.measured_ratio) r.update_ratio = AdamW::update_ratio(n[4], n[5]);
    r.step_ms = p.ended->ms_since(*p.started);
    r.tokens_per_s = static_cast<double>(tokens) / (r.step_ms / 1000.0);
    r.tokens_seen = state_.tokens_seen;
    r.elapsed_s = elapsed();
    r.peak_memory_bytes = platform::peak_memory_bytes(device_);
    emit(r);
  };

  while (state_.step < cfg_.max_steps && !stop) {
    if (dp_.active() ? abort_agreed : abort.load()) {
      reason = "aborted";
      break;
    }
    // One step's queued work, named for the op-list guard (test/step-ops.test.ts) and any libtorch profiler; the
    // previous step's numbers are read after it.
    PendingStep p;
    {
      RECORD_USER_SCOPE("dpsm::step");
      const platform::DeviceMark started(device_);
      const int64_t step = state_.step;
      const double lr = lr_at(cfg_.optim, step);
      const bool noisy = noise_.step_is_noisy(step);
      at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device_));
      at::Tensor component_sum = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device_));
      int64_t tokens = 0;
      for (int64_t micro = 0; micro < cfg_.grad_accum; ++micro) {
        // The whole global batch is made on the host (token ids), its noise drawn as one process would draw it
        // and its targets counted there; then this rank's rows go to the device.
        Batch b = train_->batch(sampler_.next(), ignore, at::Device(at::kCPU));
        if (noisy) noise_.corrupt(b.targets, step);
        if (cfg_.summary_swap > 0) {
          // Decoder inputs are the targets shifted right: a row that takes another's reference takes both.
          const uint64_t index = static_cast<uint64_t>(step * cfg_.grad_accum + micro);
          const auto rows = summary_swap_sources(cfg_.data_seed, index, b.targets.size(0), cfg_.summary_swap);
          const at::Tensor src = at::tensor(rows, at::TensorOptions().dtype(at::kLong));
          b.targets = b.targets.index_select(0, src);
          if (b.decoder_input_ids.defined()) b.decoder_input_ids = b.decoder_input_ids.index_select(0, src);
        }
        const int64_t own = count_targets(b.targets, ignore, first_row, rank_rows);
        // Several ranks: this rank's mean is weighted by its share of the global batch's targets (times the ranks,
        // whose gradients are averaged), so the step's gradient is the global batch's mean as one process takes it,
        // whatever the rows' lengths.
        double weight = 1.0;
        if (dp_.active()) {
          const int64_t global_tokens = count_targets(b.targets, ignore, 0, b.targets.size(0));
          weight = global_tokens > 0 ? static_cast<double>(own * dp_.world_size()) / static_cast<double>(global_tokens)
                                     : 0.0;
        }
        tokens += own;
        b = slice_rows(b, first_row, rank_rows, device_);
        forward_backward(cfg_.objective, b, static_cast<double>(cfg_.grad_accum), loss_sum, component_sum, weight);
      }
      dp_.average_gradients(optim_.params);
      const bool measure_ratio = measures_ratio(step);
      const at::Tensor grad_norm = update(lr, step, measure_ratio);
      loss_step_.add_(1);  // one optimiser step: α moves on (never per micro-batch, never in evaluation)
      ++state_.step;

      p.measured_ratio = measure_ratio;
      p.record.type = ProgressRecord::Type::Step;
      p.record.step = state_.step;
      p.record.alpha = objective_alpha(cfg_.objective, step);  // the α this step's kernel read
      p.record.lr = lr;
      p.record.noisy = noisy;
      p.tokens = tokens;
      p.abort_asked = abort.load();
      p.numbers = platform::LaggedRead(step_numbers(loss_sum, component_sum, grad_norm));
      p.started = started;
      p.ended.emplace(device_);
    }
    finish_pending();  // the step before this one
    pending = std::move(p);

    if (state_.step % cfg_.eval_every == 0 || state_.step == cfg_.max_steps) {
      finish_pending();
      // Rank 0 evaluates and checkpoints; the others wait for its early-stopping decision.
      if (dp_.is_root()) stop = evaluate_and_checkpoint(emit, elapsed());
      stop = dp_.broadcast_flag(stop);
      if (stop) reason = "early_stopping";
    }
  }
  finish_pending();
  if (reason == "aborted" && !cfg_.run_dir.empty() && dp_.is_root()) checkpoint("last", elapsed());
  ProgressRecord done;
  done.type = ProgressRecord::Type::Done;
  done.step = state_.step;
  done.reason = reason;
  done.elapsed_s = elapsed();
  done.tokens_seen = state_.tokens_seen;
  done.best_step = state_.best_step;
  done.best_nll = state_.best_nll;
  done.peak_memory_bytes = platform::peak_memory_bytes(device_);
  emit(done);
}

}  // namespace dpsm::core

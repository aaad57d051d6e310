#include "sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

namespace dpsm::core {
namespace {
constexpr uint64_t kSaltData = 1, kSaltNoise = 2;
}

at::Generator seeded_generator(uint64_t seed, uint64_t salt, uint64_t index) {
  return at::detail::createCPUGenerator(seed * 0x9E3779B97F4A7C15ull ^ (salt << 48) ^ index);
}

at::Tensor BatchSampler::next() {
  const int64_t global = batch_ * world_;
  if (cursor + global > rows_) {
    ++epoch;
    cursor = 0;
  }
  if (perm_epoch_ != epoch) {
    perm_ = at::randperm(rows_, seeded_generator(seed_, kSaltData, static_cast<uint64_t>(epoch)),
                         at::TensorOptions().dtype(at::kLong));
    perm_epoch_ = epoch;
  }
  at::Tensor rows = perm_.narrow(0, cursor, global);
  cursor += global;
  return rows;
}

std::pair<int64_t, int64_t> BatchSampler::position_after(int64_t batches) const {
  const int64_t global = batch_ * world_, per_epoch = std::max<int64_t>(1, rows_ / global);
  if (batches <= 0) return {0, 0};
  return {(batches - 1) / per_epoch, ((batches - 1) % per_epoch + 1) * global};
}

LabelNoiseConfig label_noise_from_json(const Json& j) {
  LabelNoiseConfig c;
  c.step_fraction = field<double>(j, "stepFraction");
  c.token_fraction = field<double>(j, "tokenFraction");
  return c;
}

bool LabelNoise::step_is_noisy(int64_t step) const {
  if (!(c_.step_fraction > 0 && c_.token_fraction > 0)) return false;
  const at::Generator g = seeded_generator(seed_, kSaltNoise, static_cast<uint64_t>(step) + (1ull << 40));
  return at::rand({1}, g).item<double>() < c_.step_fraction;
}

void LabelNoise::corrupt(at::Tensor& targets, int64_t step) const {
  at::Generator gen = seeded_generator(seed_, kSaltNoise, static_cast<uint64_t>(step));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor t = targets.cpu();
  const at::Tensor pick = (at::rand(t.sizes(), gen, f32) < c_.token_fraction) & (t != ignore_);
  const at::Tensor random = at::randint(0, vocab_, t.sizes(), gen, at::TensorOptions().dtype(at::kLong));
  targets = at::where(pick, random, t).to(targets.device());
}

std::vector<int64_t> summary_swap_sources(uint64_t seed, uint64_t batch_index, int64_t rows, double p) {
  uint64_t state = (seed << 32) | (batch_index & 0xffffffffull);
  auto next = [&state] {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<int64_t> src(static_cast<size_t>(std::max<int64_t>(rows, 0)));
  for (int64_t i = 0; i < rows; ++i) {
    const uint64_t a = next(), b = next();
    src[i] = i;
    if (rows >= 2 && static_cast<double>(a >> 11) * 0x1.0p-53 < p) {
      const int64_t j = static_cast<int64_t>(b % static_cast<uint64_t>(rows - 1));
      src[i] = j >= i ? j + 1 : j;
    }
  }
  return src;
}

}  // namespace dpsm::core

// One model shared by its JS Model object and any Trainer over it, with one long job at a time on it.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <stdexcept>

#include "../core/models/language_model.h"

namespace dpsm::addon {

struct ModelHolder {
  std::shared_ptr<core::LanguageModel> model;  // null once disposed
  std::atomic<bool> busy{false};
  // The model's parameter and buffer bytes, reported to V8 as external memory while the JS object owns them.
  int64_t external_bytes = 0;
};

// The model behind `h`, or an Error saying it was disposed.
inline core::LanguageModel& live_model(const ModelHolder& h) {
  if (!h.model) throw std::runtime_error("model: disposed (dispose() was called); create or load a new one");
  return *h.model;
}

// Bytes held by a model's parameters and buffers (what V8 is told the JS object keeps alive).
int64_t model_bytes(core::LanguageModel& m);

class BusyGuard {
 public:
  explicit BusyGuard(std::shared_ptr<ModelHolder> h) : h_(std::move(h)) {
    bool expected = false;
    if (!h_->busy.compare_exchange_strong(expected, true))
      throw std::runtime_error("model: busy with another training or evaluation; wait for it to finish");
  }
  ~BusyGuard() { h_->busy = false; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

 private:
  std::shared_ptr<ModelHolder> h_;
};

// The holder behind a JS value made by the Model constructor; throws naming `name` otherwise.
std::shared_ptr<ModelHolder> unwrap_model(const Napi::Value& v, const char* name);

}  // namespace dpsm::addon

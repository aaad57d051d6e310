#include "op_recorder.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <memory>
#include <mutex>
#include <optional>

namespace dpsm::core {
namespace {

std::mutex mutex;
std::vector<RecordedEvent> events;
std::optional<at::CallbackHandle> handle;
thread_local int depth = 0;

struct Context : at::ObserverContext {
  size_t index = 0;
  bool op = false;
};

void add_tensors(const c10::IValue& v, std::vector<RecordedTensor>& out) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return;
    RecordedTensor r;
    r.sizes = t.sizes().vec();
    r.dtype = c10::toString(t.scalar_type());
    r.bytes = t.numel() * static_cast<int64_t>(t.element_size());
    out.push_back(std::move(r));
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) add_tensors(c10::IValue(t), out);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) add_tensors(e, out);
  }
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  auto ctx = std::make_unique<Context>();
  RecordedEvent e;
  e.thread = at::RecordFunction::currentThreadId();
  e.name = fn.name();
  if (fn.scope() == at::RecordScope::USER_SCOPE) {
    e.kind = RecordedEvent::Kind::Begin;
  } else {
    e.kind = RecordedEvent::Kind::Op;
    e.depth = depth++;
    ctx->op = true;
    for (const c10::IValue& v : fn.inputs()) add_tensors(v, e.inputs);
  }
  std::lock_guard<std::mutex> lock(mutex);
  ctx->index = events.size();
  events.push_back(std::move(e));
  return ctx;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* base) {
  auto* ctx = static_cast<Context*>(base);
  if (ctx->op) {
    --depth;
    std::vector<RecordedTensor> outputs;
    for (const c10::IValue& v : fn.outputs()) add_tensors(v, outputs);
    std::lock_guard<std::mutex> lock(mutex);
    if (ctx->index < events.size()) events[ctx->index].outputs = std::move(outputs);
    return;
  }
  RecordedEvent e;
  e.kind = RecordedEvent::Kind::End;
  e.name = fn.name();
  e.thread = at::RecordFunction::currentThreadId();
  std::lock_guard<std::mutex> lock(mutex);
  events.push_back(std::move(e));
}

}  // namespace

void start_op_recording() {
  std::lock_guard<std::mutex> lock(mutex);
  events.clear();
  if (handle) return;
  handle = at::addGlobalCallback(at::RecordFunctionCallback(on_start, on_end)
                                     .needsInputs(true)
                                     .needsOutputs(true)
                                     .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
}

std::vector<RecordedEvent> stop_op_recording() {
  std::optional<at::CallbackHandle> h;
  {
    std::lock_guard<std::mutex> lock(mutex);
    h = handle;
    handle.reset();
  }
  if (h) at::removeCallback(*h);
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<RecordedEvent> out = std::move(events);
  events.clear();
  return out;
}

}  // namespace dpsm::core

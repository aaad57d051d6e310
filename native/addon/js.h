// The N-API boundary's plumbing: every C++ exception becomes a JS error (naming the argument where one is
// to blame), config documents arrive as JSON, and long work runs on libuv's pool behind a Promise.
#pragma once

#include <napi.h>

#include <c10/util/Exception.h>

#include "../core/config.h"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace dpsm::addon {

// A bad argument: becomes a TypeError or RangeError in JS.
struct ArgError : std::invalid_argument {
  bool range;
  ArgError(const std::string& msg, bool is_range) : std::invalid_argument(msg), range(is_range) {}
};

inline Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  if (auto* a = dynamic_cast<const ArgError*>(&e)) {
    if (a->range) return Napi::RangeError::New(env, a->what());
    return Napi::TypeError::New(env, a->what());
  }
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return Napi::Error::New(env, c->what_without_backtrace());
  return Napi::Error::New(env, e.what());
}

// Runs `fn`, turning any C++ exception into a thrown JS error.
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  Napi::Env env = info.Env();
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js_error(env, e);
  }
}

// Argument i as a JSON document: lib/ hands every config object over as JSON text.
inline core::Json json_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw ArgError(std::string(name) + ": expected JSON text", false);
  return core::parse_json_object(info[i].As<Napi::String>().Utf8Value(), name);
}

// `v` as a typed array of `type`; an Error naming `name` and what was `expected` otherwise.
template <typename Array>
Array typed_array_value(const Napi::Value& v, const std::string& name, napi_typedarray_type type,
                        const char* expected) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw ArgError(name + ": expected " + expected, false);
  return v.As<Array>();
}

// Argument i as a typed array (a missing argument reads as undefined, which is refused).
template <typename Array>
Array typed_array_arg(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type,
                      const char* expected) {
  return typed_array_value<Array>(info[i], name, type, expected);
}

// Runs `work` on libuv's pool and settles a Promise: `done` turns the work's result into a JS value.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<Result()> work, std::function<Napi::Value(Napi::Env, Result&)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::exception& e) {
      error_ = std::current_exception();
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(to_js_error(env, e).Value());
    }
  }
  void OnError(const Napi::Error&) override {
    Napi::Env env = Env();
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      deferred_.Reject(to_js_error(env, e).Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Result()> work_;
  std::function<Napi::Value(Napi::Env, Result&)> done_;
  Result result_{};
  std::exception_ptr error_;
};

template <typename Result>
Napi::Promise run_async(Napi::Env env, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> done) {
  auto* w = new PromiseWorker<Result>(env, std::move(work), std::move(done));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace dpsm::addon

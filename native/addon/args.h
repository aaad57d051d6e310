// Argument checks and conversions at the N-API boundary: every bad value becomes a JS error that names
// the argument, and no C++ exception escapes into Node.
#pragma once

#include <napi.h>

#include <c10/util/Exception.h>

#include <cmath>
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
  if (auto* a = dynamic_cast<const ArgError*>(&e))
  {
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

inline Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) throw ArgError(std::string(name) + ": expected an object", false);
  return info[i].As<Napi::Object>();
}

inline bool has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

inline double num(const Napi::Object& o, const char* key, double fallback, bool required = false) {
  if (!has(o, key)) {
    if (required) throw ArgError(std::string(key) + ": required", false);
    return fallback;
  }
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw ArgError(std::string(key) + ": expected a number", false);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) throw ArgError(std::string(key) + ": expected a number, got NaN", true);
  return d;
}

inline int64_t integer(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, bool required = false) {
  const double d = num(o, key, static_cast<double>(fallback), required);
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > 9007199254740991.0)
    throw ArgError(std::string(key) + ": expected an integer >= " + std::to_string(min) + ", got " +
                       Napi::Number::New(o.Env(), d).ToString().Utf8Value(),
                   true);
  return static_cast<int64_t>(d);
}

inline std::string str(const Napi::Object& o, const char* key, const std::string& fallback) {
  if (!has(o, key)) return fallback;
  const Napi::Value v = o.Get(key);
  if (!v.IsString()) throw ArgError(std::string(key) + ": expected a string", false);
  return v.As<Napi::String>().Utf8Value();
}

inline bool flag(const Napi::Object& o, const char* key, bool fallback) {
  if (!has(o, key)) return fallback;
  const Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw ArgError(std::string(key) + ": expected a boolean", false);
  return v.As<Napi::Boolean>().Value();
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

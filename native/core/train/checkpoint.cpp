#include "checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "../config.h"
#include "../io/atomic_file.h"
#include "../io/safetensors.h"
#include "../platform.h"

namespace dpsm::core {
namespace {

namespace fs = std::filesystem;

constexpr const char* kStateFormat = "dpsm-native training state";
constexpr const char* kManifestFormat = "dpsm-native checkpoint";
constexpr int kManifestVersion = 1;
constexpr const char* kManifest = "manifest.json";
constexpr const char* kState = "training_state.safetensors";

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

// ---- SHA-256 (FIPS 180-4) ----
class Sha256 {
 public:
  void update(const unsigned char* p, size_t n) {
    bytes_ += n;
    while (n > 0) {
      const size_t take = std::min(n, 64 - fill_);
      std::memcpy(buf_.data() + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        block(buf_.data());
        fill_ = 0;
      }
    }
  }
  std::string hex() {
    const uint64_t bits = bytes_ * 8;
    const unsigned char pad = 0x80, zero = 0;
    update(&pad, 1);
    while (fill_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h_)
      for (int i = 28; i >= 0; i -= 4) out += digits[(v >> i) & 0xf];
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const unsigned char* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) |
             uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }
  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> buf_{};
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
};

// libtorch's messages carry a backtrace after their first line.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

bool is_temporary(const std::string& name) { return name.find(".tmp-") != std::string::npos; }

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Puts folder `from` in place of `to`. With an old `to`, the two are exchanged in one step (Linux's
// RENAME_EXCHANGE) and the old one, now at `from`, is removed: a kill at any moment leaves `to` whole.
void replace_folder(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::exists(to, ec)) {
    if (std::rename(from.c_str(), to.c_str()) != 0)
      throw std::runtime_error("cannot rename " + from + " to " + to + ": " + std::strerror(errno));
    return;
  }
#if defined(__linux__) && defined(SYS_renameat2)
  constexpr unsigned kExchange = 2;  // RENAME_EXCHANGE
  if (::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), kExchange) == 0) {
    fs::remove_all(from, ec);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw std::runtime_error("cannot exchange " + from + " and " + to + ": " + std::strerror(errno));
#endif
  // No exchange on this file system: move the old one aside first (a kill in between leaves `to` absent,
  // and the resume falls back to the other checkpoint).
  const std::string old = from + "-old";
  if (std::rename(to.c_str(), old.c_str()) != 0)
    throw std::runtime_error("cannot rename " + to + " to " + old + ": " + std::strerror(errno));
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw std::runtime_error("cannot rename " + from + " to " + to + ": " + std::strerror(errno));
  fs::remove_all(old, ec);
}

// A metadata value of training_state.safetensors, read strictly (the whole text a number, within bounds).
struct MetadataReader {
  const std::map<std::string, std::string>& m;
  std::string file;
  const std::string& text(const std::string& key) const {
    const auto it = m.find(key);
    if (it == m.end()) throw std::runtime_error(file + ": metadata '" + key + "' is missing");
    return it->second;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi, const std::string& bounds) const {
    const std::string& s = text(key);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
      throw std::runtime_error(file + ": metadata '" + key + "' = \"" + s + "\" is not an integer");
    if (v < lo || v > hi) throw std::runtime_error(file + ": metadata '" + key + "' = " + s + ", expected " + bounds);
    return v;
  }
  double real(const std::string& key) const {
    const std::string& s = text(key);
    char* end = nullptr;
    errno = 0;
    const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0)
      throw std::runtime_error(file + ": metadata '" + key + "' = \"" + s + "\", expected a finite number >= 0");
    return v;
  }
};

// A checkpoint folder that passed every check, ready to restore.
struct Verified {
  SafeTensors st;
  TrainingState state;
};

// Checks dir whole; throws std::runtime_error naming the file and value at fault. A fingerprint of another
// run is reported through `other_run` (not damage: the caller refuses the run dir).
Verified verify_checkpoint(const std::string& dir, const AdamW& optim, const std::string& fingerprint,
                           const ResumeLimits& limits, std::string& other_run) {
  const std::string manifest_path = dir + "/" + kManifest;
  if (!fs::exists(manifest_path))
    throw std::runtime_error(manifest_path +
                             " is missing: the checkpoint is incomplete (killed while written, or written by an "
                             "older version)");
  Json manifest;
  {
    std::ifstream in(manifest_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      manifest = Json::parse(ss.str());
    } catch (const std::exception& e) {
      throw std::runtime_error(manifest_path + ": not valid JSON (" + e.what() + ")");
    }
  }
  auto bad_manifest = [&](const std::string& what) { return std::runtime_error(manifest_path + ": " + what); };
  if (!manifest.is_object() || manifest.value("format", "") != kManifestFormat)
    throw bad_manifest(std::string("expected an object with \"format\": \"") + kManifestFormat + "\"");
  if (!manifest.contains("version") || !manifest["version"].is_number_integer() ||
      manifest["version"].get<int64_t>() != kManifestVersion)
    throw bad_manifest("expected \"version\": " + std::to_string(kManifestVersion));
  if (!manifest.contains("files") || !manifest["files"].is_array()) throw bad_manifest("expected \"files\": an array");
  bool has_state = false;
  for (const Json& f : manifest["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("bytes") ||
        !f["bytes"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string())
      throw bad_manifest("each file needs \"name\" (string), \"bytes\" (integer >= 0) and \"sha256\" (string)");
    const std::string name = f["name"].get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." || name == kManifest)
      throw bad_manifest("file name \"" + name + "\" is not a plain file name of the checkpoint");
    const std::string path = dir + "/" + name;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw std::runtime_error(path + " is missing (listed in " + manifest_path + ")");
    const auto expected = f["bytes"].get<uint64_t>();
    if (size != expected)
      throw std::runtime_error(path + ": " + std::to_string(size) + " bytes, the manifest says " +
                               std::to_string(expected));
    const std::string sum = sha256_file(path);
    if (sum != f["sha256"].get<std::string>())
      throw std::runtime_error(path + ": sha256 " + sum + " differs from the manifest's " +
                               f["sha256"].get<std::string>() + " (the file is damaged)");
    if (name == kState) has_state = true;
  }
  if (!has_state) throw bad_manifest(std::string("does not list ") + kState);

  const std::string path = dir + "/" + kState;
  Verified v;
  try {
    v.st = read_safetensors(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(e.what());
  }
  const auto& meta = v.st.metadata;
  MetadataReader m{meta, path};
  if (m.text("format") != kStateFormat)
    throw std::runtime_error(path + ": metadata 'format' = \"" + m.text("format") + "\", expected \"" + kStateFormat +
                             "\"");
  if (m.text("fingerprint") != fingerprint) {
    other_run = m.text("fingerprint");
    throw std::runtime_error(path + ": a checkpoint of a different run");
  }
  TrainingState& s = v.state;
  const int64_t big = std::numeric_limits<int64_t>::max();
  s.step = m.integer("step", 0, limits.max_steps, "0 to maxSteps (" + std::to_string(limits.max_steps) + ")");
  if (!manifest.contains("step") || !manifest["step"].is_number_integer() || manifest["step"].get<int64_t>() != s.step)
    throw bad_manifest("\"step\" differs from " + path + "'s step " + std::to_string(s.step));
  const auto [epoch, cursor] = limits.position_after(s.step * limits.micro_batches_per_step);
  s.epoch = m.integer("epoch", epoch, epoch,
                      std::to_string(epoch) + " (the data's epoch at step " + std::to_string(s.step) + ")");
  s.cursor = m.integer("cursor", cursor, cursor,
                       std::to_string(cursor) + " (the data's position at step " + std::to_string(s.step) + ")");
  s.tokens_seen = m.integer("tokens_seen", 0, big, "an integer >= 0");
  s.bad_evals = m.integer("bad_evals", 0, s.step, "0 to the step (" + std::to_string(s.step) + ")");
  s.best_step = m.integer("best_step", -1, s.step, "-1 to the step (" + std::to_string(s.step) + ")");
  const int64_t has_best = m.integer("has_best", 0, 1, "0 or 1");
  s.has_best = has_best == 1;
  if (s.has_best != (s.best_step >= 0))
    throw std::runtime_error(path + ": metadata 'has_best' = " + std::to_string(has_best) +
                             " disagrees with 'best_step' = " + std::to_string(s.best_step));
  s.best_nll = m.real("best_nll");
  s.elapsed_s = m.real("elapsed_s");

  auto need_tensor = [&](const std::string& key, const at::Tensor& like) {
    const auto it = v.st.tensors.find(key);
    if (it == v.st.tensors.end()) throw std::runtime_error(path + ": tensor '" + key + "' is missing");
    const at::Tensor& t = it->second;
    if (t.sizes() != like.sizes() || t.scalar_type() != like.scalar_type()) {
      std::ostringstream os;
      os << path << ": tensor '" << key << "' is " << t.scalar_type() << " " << t.sizes() << ", expected "
         << like.scalar_type() << " " << like.sizes();
      throw std::runtime_error(os.str());
    }
  };
  for (size_t i = 0; i < optim.params.size(); ++i) {
    need_tensor("model." + optim.names[i], optim.params[i]);
    need_tensor("optim.exp_avg." + optim.names[i], optim.exp_avg[i]);
    need_tensor("optim.exp_avg_sq." + optim.names[i], optim.exp_avg_sq[i]);
  }
  // The CPU generator's state, tried on a scratch generator (libtorch's own message names neither).
  const auto rng = v.st.tensors.find("rng.cpu");
  if (rng == v.st.tensors.end()) throw std::runtime_error(path + ": tensor 'rng.cpu' is missing");
  try {
    set_rng_state(at::make_generator<at::CPUGeneratorImpl>(), rng->second);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": tensor 'rng.cpu' is not a valid CPU generator state (" + first_line(e.what()) +
                             ")");
  }
  return v;
}

}  // namespace

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    if (n > 0) h.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<size_t>(n));
  }
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return h.hex();
}

void save_checkpoint(const std::string& run_dir, const std::string& which, LanguageModel& model, const AdamW& optim,
                     const TrainingState& state, const std::string& fingerprint) {
  fs::create_directories(run_dir);
  std::random_device rd;
  const std::string target = run_dir + "/" + which;
  const std::string dir = target + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  fs::create_directories(dir);
  try {
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
        {"format", kStateFormat},
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
    write_safetensors_atomic(dir + "/" + kState, st);
    model.save_hf(dir);
    // The manifest, last: every file the folder now holds, with its size and checksum.
    Json files = Json::array();
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names)
      files.push_back({{"name", n}, {"bytes", fs::file_size(dir + "/" + n)}, {"sha256", sha256_file(dir + "/" + n)}});
    const Json manifest = {
        {"format", kManifestFormat}, {"version", kManifestVersion}, {"step", state.step}, {"files", files}};
    write_atomic(dir + "/" + kManifest, manifest.dump(2) + "\n");
    fsync_dir(dir);
    replace_folder(dir, target);
    fsync_dir(run_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    throw;
  }
}

std::vector<std::string> remove_stale_temporaries(const std::string& run_dir) {
  std::vector<std::string> removed;
  if (run_dir.empty()) return removed;
  for (const std::string& d : {run_dir, run_dir + "/last", run_dir + "/best"}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (is_temporary(e.path().filename().string())) stale.push_back(e.path());
    for (const auto& p : stale) {
      fs::remove_all(p, ec);
      if (ec) throw std::runtime_error("cannot remove the stale temporary " + p.string() + ": " + ec.message());
      removed.push_back(p.string());
    }
  }
  return removed;
}

ResumeResult load_checkpoint(const std::string& run_dir, AdamW& optim, TrainingState& state,
                             const std::string& fingerprint, const at::Device& device, const ResumeLimits& limits) {
  ResumeResult result;
  if (run_dir.empty()) return result;
  struct Candidate {
    std::string which, dir, error;
    std::optional<Verified> ok;
  };
  std::vector<Candidate> found;
  for (const char* which : {"last", "best"}) {
    const std::string dir = run_dir + "/" + which;
    std::error_code ec;
    if (!fs::exists(dir, ec)) continue;
    Candidate c{which, dir, "", std::nullopt};
    if (!fs::is_directory(dir, ec)) {
      c.error = dir + " is not a folder";
    } else {
      std::string other_run;
      try {
        c.ok = verify_checkpoint(dir, optim, fingerprint, limits, other_run);
      } catch (const std::exception& e) {
        if (!other_run.empty()) {
          throw std::invalid_argument("runDir: " + run_dir + " holds a checkpoint of a different run (" + other_run +
                                      "); use another runDir or delete it");
        }
        c.error = e.what();
      }
    }
    found.push_back(std::move(c));
  }
  if (found.empty()) return result;
  Candidate* use = nullptr;
  for (auto& c : found)
    if (c.ok && (!use || c.ok->state.step > use->ok->state.step)) use = &c;
  if (!use) {
    std::string why;
    for (const auto& c : found) why += "\n  " + c.which + "/: " + c.error;
    throw std::runtime_error("runDir: " + run_dir + " holds checkpoints, but none can be resumed:" + why + "\nDelete " +
                             run_dir +
                             " (or move it away) to start the run over, or restore a "
                             "checkpoint folder from a backup.");
  }
  if (const TrainingState& s = use->ok->state; s.has_best && s.best_step == s.step && use->which == "last") {
    const auto best = std::find_if(found.begin(), found.end(), [](const Candidate& c) { return c.which == "best"; });
    result.best_behind = best == found.end() || !best->ok || best->ok->state.step != s.step;
  }
  for (const auto& c : found) {
    if (c.ok) continue;
    if (c.which == "last")
      result.warnings.push_back("checkpoint " + c.dir + " cannot be resumed (" + c.error + "); resuming from " +
                                use->dir + " at step " + std::to_string(use->ok->state.step) + " instead");
    else
      result.warnings.push_back("checkpoint " + c.dir + " is damaged (" + c.error +
                                (result.best_behind
                                     ? "); it is written again from " + use->dir
                                     : std::string("); it is rewritten at the run's next improved evaluation")));
  }
  if (use->which != "last" && found.front().which != "last")
    result.warnings.push_back("checkpoint " + run_dir + "/last is missing; resuming from " + use->dir + " at step " +
                              std::to_string(use->ok->state.step));

  // Every check passed: restore.
  const SafeTensors& st = use->ok->st;
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < optim.params.size(); ++i) {
    at::Tensor p = optim.params[i];
    p.copy_(st.tensors.at("model." + optim.names[i]));
    optim.exp_avg[i].copy_(st.tensors.at("optim.exp_avg." + optim.names[i]));
    optim.exp_avg_sq[i].copy_(st.tensors.at("optim.exp_avg_sq." + optim.names[i]));
  }
  set_rng_state(at::detail::getDefaultCPUGenerator(), st.tensors.at("rng.cpu"));
  if (const auto g = platform::default_cuda_generator(device); g && st.tensors.count("rng.cuda")) {
    try {
      set_rng_state(*g, st.tensors.at("rng.cuda"));
    } catch (const std::exception& e) {
      throw std::runtime_error(use->dir + "/" + kState + ": tensor 'rng.cuda' is not a valid CUDA generator state (" +
                               first_line(e.what()) + ")");
    }
  }
  state = use->ok->state;
  result.resumed = true;
  result.from = use->dir;
  return result;
}

}  // namespace dpsm::core

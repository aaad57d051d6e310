#include "data_parallel.h"

#include <chrono>
#include <mutex>
#include <stdexcept>

#if defined(DPSM_WITH_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace dpsm::core {

DistributedConfig distributed_config_from_json(const Json& j) {
  DistributedConfig c;
  c.rank = field<int64_t>(j, "rank");
  c.world_size = field<int64_t>(j, "worldSize");
  c.master_addr = field<std::string>(j, "masterAddr");
  c.master_port = field<int64_t>(j, "masterPort");
  c.timeout_s = field<double>(j, "timeoutSeconds");
  c.bucket_bytes = field<int64_t>(j, "bucketBytes");
  return c;
}

std::string distributed_backends() {
#if defined(DPSM_WITH_GLOO)
  return "gloo";
#else
  return "";
#endif
}

#if defined(DPSM_WITH_GLOO)

class ProcessGroupHandle {
 public:
  explicit ProcessGroupHandle(const DistributedConfig& c) : c_(c) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000));
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(c.master_port);
    so.isServer = c.rank == 0;
    so.numWorkers = static_cast<std::size_t>(c.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
      // Loopback for one machine; otherwise the interface this host's name resolves to, as torchrun does.
      const bool loopback = c.master_addr == "127.0.0.1" || c.master_addr == "localhost";
      opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                       : c10d::ProcessGroupGloo::createDefaultDevice());
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(c.rank),
                                                           static_cast<int>(c.world_size), opts);
    } catch (const std::exception& e) {
      throw std::runtime_error("distributed: rank " + std::to_string(c.rank) + " of " + std::to_string(c.world_size) +
                               " could not join the process group at " + c.master_addr + ":" +
                               std::to_string(c.master_port) + " within " +
                               std::to_string(static_cast<int64_t>(c.timeout_s)) + " s: " + first_line(e.what()));
    }
  }

  const DistributedConfig& config() const { return c_; }

  // Waits on a collective; a peer that died or stopped answering becomes one clear error.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error("distributed: rank " + std::to_string(c_.rank) + ": " + what +
                               " failed: another rank stopped, or did not answer within " +
                               std::to_string(static_cast<int64_t>(c_.timeout_s)) + " s (" + first_line(e.what()) +
                               ")");
    }
  }

  c10::intrusive_ptr<c10d::ProcessGroupGloo>& group() { return group_; }

 private:
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  DistributedConfig c_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

namespace {

// One process group per process, joined by the first trainer that asks (the launcher starts one process per
// rank; the experiments' runs then share it, in the same order on every rank).
std::shared_ptr<ProcessGroupHandle> join(const DistributedConfig& c) {
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroupHandle> joined;
  std::lock_guard<std::mutex> lock(mutex);
  if (!joined) {
    joined = std::make_shared<ProcessGroupHandle>(c);
    return joined;
  }
  const DistributedConfig& j = joined->config();
  if (j.rank != c.rank || j.world_size != c.world_size || j.master_addr != c.master_addr ||
      j.master_port != c.master_port)
    throw std::invalid_argument("distributed: this process already joined rank " + std::to_string(j.rank) + " of " +
                                std::to_string(j.world_size) + " at " + j.master_addr + ":" +
                                std::to_string(j.master_port) + "; a process belongs to one process group");
  return joined;
}

// Parameters (or their gradients) grouped for collectives: consecutive runs of one dtype and device of at most
// `bytes` each, taken in reverse order (backward produces the last layers' gradients first).
std::vector<std::vector<at::Tensor>> buckets(const std::vector<at::Tensor>& tensors, int64_t bytes) {
  std::vector<std::vector<at::Tensor>> out;
  int64_t filled = 0;
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    const at::Tensor& t = *it;
    const bool fits = !out.empty() && filled + static_cast<int64_t>(t.nbytes()) <= bytes &&
                      out.back().front().scalar_type() == t.scalar_type() && out.back().front().device() == t.device();
    if (!fits) {
      out.emplace_back();
      filled = 0;
    }
    out.back().push_back(t);
    filled += static_cast<int64_t>(t.nbytes());
  }
  return out;
}

// One flat CPU tensor per bucket (Gloo works on host memory here), and back.
at::Tensor flatten(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const at::Tensor& t : ts) flat.push_back(t.detach().reshape({-1}));
  return at::cat(flat).cpu().contiguous();
}
void unflatten_into(const at::Tensor& flat, const std::vector<at::Tensor>& ts) {
  int64_t offset = 0;
  for (const at::Tensor& t : ts) {
    const int64_t n = t.numel();
    t.detach().copy_(flat.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

}  // namespace

DataParallel::DataParallel(const DistributedConfig& c) : c_(c) {
  if (active()) group_ = join(c);
}

void DataParallel::broadcast_parameters(const std::vector<at::Tensor>& params) {
  if (!active()) return;
  at::NoGradGuard no_grad;
  for (const auto& bucket : buckets(params, c_.bucket_bytes)) {
    std::vector<at::Tensor> flat{flatten(bucket)};
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    group_->wait(group_->group()->broadcast(flat, o), "broadcasting rank 0's parameters");
    unflatten_into(flat[0], bucket);
  }
}

void DataParallel::average_gradients(const std::vector<at::Tensor>& params) {
  if (!active()) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const at::Tensor& p : params) {
    // Every rank must send every gradient, in the same layout.
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  const auto groups = buckets(grads, c_.bucket_bytes);
  std::vector<std::vector<at::Tensor>> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  flats.reserve(groups.size());
  for (const auto& g : groups) {
    flats.push_back({flatten(g)});
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    works.push_back(group_->group()->allreduce(flats.back(), o));
  }
  const double inv = 1.0 / static_cast<double>(c_.world_size);
  for (size_t i = 0; i < groups.size(); ++i) {
    group_->wait(works[i], "averaging gradients");
    unflatten_into(flats[i][0].mul_(inv), groups[i]);
  }
}

void DataParallel::sum(at::Tensor& values) {
  if (!active()) return;
  std::vector<at::Tensor> v{values};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  group_->wait(group_->group()->allreduce(v, o), "summing the step's statistics");
}

bool DataParallel::broadcast_flag(bool value) {
  if (!active()) return value;
  std::vector<at::Tensor> v{at::full({1}, value ? 1 : 0, at::TensorOptions().dtype(at::kInt))};
  c10d::BroadcastOptions o;
  o.rootRank = 0;
  group_->wait(group_->group()->broadcast(v, o), "waiting for rank 0's evaluation");
  return v[0].item<int>() != 0;
}

#else  // a libtorch without Gloo's headers: one process only

class ProcessGroupHandle {};

DataParallel::DataParallel(const DistributedConfig& c) : c_(c) {
  if (active())
    throw std::invalid_argument("distributed: worldSize " + std::to_string(c.world_size) +
                                ", but this build of dpsm-native has no process-group backend (it was built "
                                "without Gloo's headers: Debian's libgloo-dev; see native/setup.sh)");
}
void DataParallel::broadcast_parameters(const std::vector<at::Tensor>&) {}
void DataParallel::average_gradients(const std::vector<at::Tensor>&) {}
void DataParallel::sum(at::Tensor&) {}
bool DataParallel::broadcast_flag(bool value) { return value; }

#endif

}  // namespace dpsm::core

#include "data_parallel.h"

#include <chrono>
#include <mutex>
#include <regex>
#include <stdexcept>

#if defined(DPSM_WITH_GLOO)
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if defined(DPSM_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
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
#if defined(DPSM_WITH_GLOO) && defined(DPSM_WITH_NCCL)
  return "gloo,nccl";
#elif defined(DPSM_WITH_GLOO)
  return "gloo";
#else
  return "";
#endif
}

#if defined(DPSM_WITH_GLOO)

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// The address this host reaches `host` from: the source address the kernel picks for a UDP socket connected there
// (connect() on UDP sends nothing). Each rank's Gloo device listens on it, so the ranks of another machine reach
// it by the route their rendezvous took. Gloo's own default, the address this host's name resolves to, is
// 127.0.0.1 or 127.0.1.1 on many machines (/etc/hosts), which the other machines cannot reach.
std::string local_address_toward(const std::string& host, int64_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    throw std::runtime_error("cannot resolve the master address " + host);
  std::string address;
  for (addrinfo* a = found; a && address.empty(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = local.ss_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
      if (inet_ntop(local.ss_family, raw, text, sizeof(text))) address = text;
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (address.empty()) throw std::runtime_error("no route from this host to the master address " + host);
  return address;
}

// What a process-group backend derives from: c10d::Backend from libtorch 2.0 on, ProcessGroup itself in 1.13.
#if TORCH_VERSION_MAJOR >= 2
using GroupBackend = c10d::Backend;
#else
using GroupBackend = c10d::ProcessGroup;
#endif

// Which collective backend a device's tensors take, decided here only: NCCL for CUDA tensors (they are reduced on
// the GPU, no host copies), Gloo for the CPU's.
enum class Backend { gloo, nccl };
Backend backend_for(const at::Device& device) {
  if (!device.is_cuda()) return Backend::gloo;
#if defined(DPSM_WITH_NCCL)
  return Backend::nccl;
#else
  throw std::invalid_argument(
      "distributed: the model is on " + device.str() +
      ", but this build of dpsm-native has no NCCL process group (it was built without NCCL's header, nccl.h: "
      "native/setup-torch2.sh --cuda brings it)");
#endif
}

}  // namespace

class ProcessGroupHandle {
 public:
  ProcessGroupHandle(const DistributedConfig& c, const at::Device& device)
      : c_(c), backend_(backend_for(device)), device_(backend_ == Backend::nccl ? device : at::Device(at::kCPU)) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000));
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(c.master_port);
    so.isServer = c.rank == 0;
    so.numWorkers = static_cast<std::size_t>(c.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
      // Gloo listens on the address toward the master, or on the interface GLOO_SOCKET_IFNAME names (as for
      // PyTorch).
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      address_ = local_address_toward(c.master_addr, c.master_port);
      // Every rank's address, so that a lost connection can be told by the rank behind it.
      store_->set("dpsm/address/" + std::to_string(c.rank), std::vector<uint8_t>(address_.begin(), address_.end()));
      for (int64_t r = 0; r < c.world_size; ++r) {
        const auto a = store_->get("dpsm/address/" + std::to_string(r));
        addresses_.emplace_back(a.begin(), a.end());
      }
      if (backend_ == Backend::gloo) {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        opts->devices.push_back(interface && *interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                                        : c10d::ProcessGroupGloo::createDeviceForHostname(address_));
        group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, static_cast<int>(c.rank),
                                                             static_cast<int>(c.world_size), opts);
      } else {
#if defined(DPSM_WITH_NCCL)
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout;
        group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, static_cast<int>(c.rank),
                                                             static_cast<int>(c.world_size), opts);
#endif
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("distributed: rank " + std::to_string(c.rank) + " of " + std::to_string(c.world_size) +
                               " could not join the process group at " + c.master_addr + ":" +
                               std::to_string(c.master_port) + " within " +
                               std::to_string(static_cast<int64_t>(c.timeout_s)) + " s: " + first_line(e.what()));
    }
  }

  const DistributedConfig& config() const { return c_; }
  // Where a collective's tensors must be: the CPU for Gloo, the model's GPU for NCCL.
  const at::Device& device() const { return device_; }

  // Waits on a collective; a peer that died or stopped answering becomes one clear error, naming the rank(s) at
  // the address the backend lost (Gloo's message carries it).
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      const std::string message = first_line(e.what()), peer = lost(message);
      throw std::runtime_error("distributed: rank " + std::to_string(c_.rank) + ": " + what + " failed: " +
                               (peer.empty() ? "another rank stopped, or did not answer within " +
                                                   std::to_string(static_cast<int64_t>(c_.timeout_s)) + " s"
                                             : "lost " + peer + ": it stopped, or its machine or network went away") +
                               " (" + message + ")");
    }
  }

  c10::intrusive_ptr<GroupBackend>& group() { return group_; }

 private:
  // "rank 1 at 10.0.0.2" when the backend's message names an address other ranks listen on; "" otherwise.
  std::string lost(const std::string& message) const {
    static const std::regex peer(R"(\[([0-9A-Fa-f.:]+)\]:\d+)");
    for (std::sregex_iterator m(message.begin(), message.end(), peer), end; m != end; ++m) {
      const std::string address = (*m)[1];
      std::string ranks;
      int64_t n = 0;
      for (int64_t r = 0; r < c_.world_size; ++r) {
        if (r == c_.rank || addresses_[static_cast<size_t>(r)] != address) continue;
        ranks += (n++ ? ", " : "") + std::to_string(r);
      }
      if (n) return "rank" + std::string(n > 1 ? "s " : " ") + ranks + " at " + address;
    }
    return "";
  }

  DistributedConfig c_;
  Backend backend_;
  at::Device device_;
  std::string address_;
  std::vector<std::string> addresses_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<GroupBackend> group_;
};

namespace {

// One process group per process, joined by the first trainer that asks (the launcher starts one process per
// rank; the experiments' runs then share it, in the same order on every rank).
std::shared_ptr<ProcessGroupHandle> join(const DistributedConfig& c, const at::Device& device) {
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroupHandle> joined;
  std::lock_guard<std::mutex> lock(mutex);
  if (!joined) {
    joined = std::make_shared<ProcessGroupHandle>(c, device);
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

// One flat tensor per bucket on the backend's device (Gloo: host memory; NCCL: the GPU), and back.
at::Tensor flatten(const std::vector<at::Tensor>& ts, const at::Device& device) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const at::Tensor& t : ts) flat.push_back(t.detach().reshape({-1}));
  return at::cat(flat).to(device).contiguous();
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

DataParallel::DataParallel(const DistributedConfig& c, const at::Device& device) : c_(c) {
  if (active()) group_ = join(c, device);
}

void DataParallel::broadcast_parameters(const std::vector<at::Tensor>& params) {
  if (!active()) return;
  at::NoGradGuard no_grad;
  for (const auto& bucket : buckets(params, c_.bucket_bytes)) {
    std::vector<at::Tensor> flat{flatten(bucket, group_->device())};
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
    flats.push_back({flatten(g, group_->device())});
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
  std::vector<at::Tensor> v{values.to(group_->device())};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  group_->wait(group_->group()->allreduce(v, o), "summing the step's statistics");
  if (!v[0].is_same(values)) values.copy_(v[0]);
}

bool DataParallel::broadcast_flag(bool value) {
  if (!active()) return value;
  std::vector<at::Tensor> v{at::full({1}, value ? 1 : 0, at::TensorOptions().dtype(at::kInt).device(group_->device()))};
  c10d::BroadcastOptions o;
  o.rootRank = 0;
  group_->wait(group_->group()->broadcast(v, o), "waiting for rank 0's evaluation");
  return v[0].item<int>() != 0;
}

#else  // a libtorch without Gloo's headers: one process only

class ProcessGroupHandle {};

DataParallel::DataParallel(const DistributedConfig& c, const at::Device&) : c_(c) {
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

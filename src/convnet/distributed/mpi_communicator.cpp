// Communicator over MPI: non-blocking operations waited for with a deadline, the deterministic
// tree sum by recursive doubling, and the diagnosis of a rank that stopped answering.
#include "convnet/distributed/mpi_communicator.hpp"

#ifdef CONVNET_WITH_MPI

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>
#include <tuple>
#include <vector>

namespace convnet {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxChunk = size_t{1} << 30;  // elements per MPI call (counts are int)
constexpr double kDiagnosisSeconds = 5;        // how long the ranks compare notes after a timeout

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype mpi_type<std::byte>() { return MPI_BYTE; }

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &status_comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(status_comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    host_ = host;
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    MPI_Comm_free(&status_comm_);
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  using Communicator::broadcast;
  using Communicator::sum;
  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  [[nodiscard]] std::string where() const override { return "rank " + std::to_string(rank_) + " on " + host_; }

  void agree(const std::string& error) override {
    const int failed = error.empty() ? 0 : 1;
    std::vector<int> all(static_cast<size_t>(size_));
    MPI_Request request;
    check(MPI_Iallgather(&failed, 1, MPI_INT, all.data(), 1, MPI_INT, comm_, &request), "agreement");
    wait({&request, 1}, "agreement");
    const auto first = std::find(all.begin(), all.end(), 1);
    if (first == all.end()) return;
    const int root = static_cast<int>(first - all.begin());
    std::string message = rank_ == root ? error : std::string();
    uint64_t length = message.size();
    bcast(std::as_writable_bytes(std::span(&length, 1)), root, "agreement");
    message.resize(static_cast<size_t>(length));
    bcast(std::as_writable_bytes(std::span(message.data(), message.size())), root, "agreement");
    throw CollectiveError(root == 0 ? message : "rank " + std::to_string(root) + ": " + message);
  }

  void broadcast(std::span<std::byte> data) override { bcast(data, 0, "broadcast"); }

  void sum(std::span<float> values, bool deterministic) override {
    if (deterministic) {
      tree_sum(values);
    } else {
      start_sum(values);
      finish_sums();
    }
  }
  void sum(std::span<double> values) override {
    if ((size_ & (size_ - 1)) == 0) {
      tree_sum(values);
      return;
    }
    MPI_Request request;  // small values (totals, statistics): one call
    check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm_,
                         &request),
          "sum");
    wait({&request, 1}, "sum");
  }

  void all_gather(std::span<const float> mine, std::span<float> all) override {
    if (mine.size() > kMaxChunk || all.size() != mine.size() * static_cast<size_t>(size_)) {
      throw Error(where() + ": all-gather of " + std::to_string(mine.size()) + " values per rank is beyond one MPI call");
    }
    MPI_Request request;
    check(MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, all.data(), static_cast<int>(mine.size()),
                         MPI_FLOAT, comm_, &request),
          "activation exchange");
    wait({&request, 1}, "activation exchange");
  }

  void start_sum(std::span<float> values) override {
    for (size_t at = 0; at < values.size(); at += kMaxChunk) {
      const size_t n = std::min(kMaxChunk, values.size() - at);
      MPI_Request request;
      check(MPI_Iallreduce(MPI_IN_PLACE, values.data() + at, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_, &request),
            "gradient all-reduce");
      pending_.push_back(request);
    }
  }
  void progress() override {
    if (pending_.empty()) return;
    int done = 0;
    check(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE),
          "gradient all-reduce");
    if (done != 0) pending_.clear();
  }
  void finish_sums() override {
    wait(pending_, "gradient all-reduce");
    pending_.clear();
  }

 private:
  void check(int code, const std::string& what) const {
    if (code != MPI_SUCCESS) throw Error(where() + ": MPI failed in " + what + " (" + phase_ + "): " + mpi_error_text(code));
  }

  // Waits for `requests` until the deadline, spinning briefly and then sleeping between tests.
  void wait(std::span<MPI_Request> requests, const std::string& what) {
    if (requests.empty()) return;
    const auto start = Clock::now();
    for (int polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), what);
      if (done != 0) return;
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > timeout_seconds_) diagnose(what);
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  template <typename T>
  void bcast(std::span<T> data, int root, const std::string& what) {
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < data.size(); at += kMaxChunk) {
      const size_t n = std::min(kMaxChunk, data.size() - at);
      MPI_Request request;
      check(MPI_Ibcast(data.data() + at, static_cast<int>(n), mpi_type<T>(), root, comm_, &request), what);
      requests.push_back(request);
    }
    wait(requests, what);
  }

  // Recursive doubling: at step k each rank exchanges its partial sum with rank ^ k and both add
  // (lower rank's part) + (upper rank's part), so the association is the fixed binary tree.
  template <typename T>
  void tree_sum(std::span<T> values) {
    if ((size_ & (size_ - 1)) != 0) {
      throw Error("a deterministic sum needs a power-of-two number of ranks, not " + std::to_string(size_));
    }
    std::vector<T>& other = std::get<std::vector<T>>(scratch_);  // the partner's part, kept between calls
    if (other.size() < values.size()) other.resize(values.size());
    for (int k = 1; k < size_; k <<= 1) {
      const int partner = rank_ ^ k;
      std::vector<MPI_Request> requests;
      for (size_t at = 0; at < values.size(); at += kMaxChunk) {
        const int n = static_cast<int>(std::min(kMaxChunk, values.size() - at));
        MPI_Request receive, send;
        check(MPI_Irecv(other.data() + at, n, mpi_type<T>(), partner, k, comm_, &receive), "deterministic sum");
        check(MPI_Isend(values.data() + at, n, mpi_type<T>(), partner, k, comm_, &send), "deterministic sum");
        requests.push_back(receive);
        requests.push_back(send);
      }
      wait(requests, "deterministic sum");
      const bool lower = rank_ < partner;
      for (size_t i = 0; i < values.size(); ++i) values[i] = lower ? values[i] + other[i] : other[i] + values[i];
    }
  }

  // After a timeout: rank 0 collects a note from every rank that is still answering (they time
  // out too) and names the ones that are not; the others report that they saw no progress.
  [[noreturn]] void diagnose(const std::string& what) {
    const std::string waited = std::to_string(static_cast<int>(timeout_seconds_));
    std::vector<MPI_Request> requests;
    std::vector<int> notes(static_cast<size_t>(size_), -1);
    if (rank_ == 0) {
      for (int r = 1; r < size_; ++r) {
        MPI_Request request;
        MPI_Irecv(&notes[static_cast<size_t>(r)], 1, MPI_INT, r, 0, status_comm_, &request);
        requests.push_back(request);
      }
    } else {
      MPI_Request request;
      MPI_Isend(&rank_, 1, MPI_INT, 0, 0, status_comm_, &request);
      requests.push_back(request);
    }
    const auto start = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - start).count() < kDiagnosisSeconds) {
      int done = 0;
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      if (done != 0 && rank_ == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (rank_ != 0) {
      throw Error(where() + ": no progress in " + what + " (" + phase_ + ") for " + waited +
                  " s: rank 0 or another rank stopped or hung; stopping the job");
    }
    std::string silent;
    for (int r = 1; r < size_; ++r) {
      if (notes[static_cast<size_t>(r)] != r) silent += (silent.empty() ? "" : ", ") + std::to_string(r);
    }
    if (silent.empty()) silent = "none identified (all answered after the timeout)";
    throw Error("no progress in " + what + " (" + phase_ + ") for " + waited + " s: rank(s) " + silent +
                " stopped or hung; stopping the job (--timeout sets the wait)");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm status_comm_ = MPI_COMM_NULL;  // timeout diagnosis only, so its messages never meet the run's
  int rank_ = 0;
  int size_ = 1;
  std::string host_;
  std::vector<MPI_Request> pending_;  // started sums
  std::tuple<std::vector<float>, std::vector<double>> scratch_;
};

}  // namespace

bool mpi_available() { return true; }

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

void abort_mpi_job(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized != 0 && finalized == 0) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace convnet

#else

namespace convnet {

bool mpi_available() { return false; }

std::unique_ptr<Communicator> make_mpi_communicator() {
  throw Error("this convnet was built without MPI: install Debian's libopenmpi-dev and openmpi-bin and rebuild");
}

void abort_mpi_job(int) {}

}  // namespace convnet

#endif

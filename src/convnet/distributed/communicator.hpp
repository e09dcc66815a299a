// The processes of a distributed run and what they say to each other: broadcasts from rank 0,
// sums over ranks (a fixed pairwise tree where bits must not depend on the rank count, MPI's own
// all-reduce otherwise, started per bucket while the backward pass runs), and agreement on whether
// a phase failed. One process is a Communicator of size 1 whose operations do nothing; MPI is
// used when the program was started by mpirun (make_communicator). Every wait has a deadline: a
// rank that died or hangs stops the job with a message naming it instead of a silent hang.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "convnet/error.hpp"

namespace convnet {

/// A failure every rank of a run saw at once (agreed, or from reduced values): each rank throws
/// the same message, and only rank 0 needs to print it.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  [[nodiscard]] virtual int rank() const { return 0; }
  [[nodiscard]] virtual int size() const { return 1; }
  /// "rank R on HOST" for messages.
  [[nodiscard]] virtual std::string where() const { return "rank 0"; }
  /// Names the current phase ("epoch 2, batch 31") in timeout messages.
  void set_phase(std::string phase) { phase_ = std::move(phase); }

  /// Every rank passes its own outcome (empty: success). When any rank failed, every rank throws
  /// CollectiveError with the lowest failing rank's message (prefixed "rank R: " when R != 0).
  virtual void agree(const std::string& error) {
    if (!error.empty()) throw CollectiveError(error);
  }
  /// Rank 0's bytes / string / floats replace every other rank's (sizes are sent first).
  virtual void broadcast(std::span<std::byte> data) { (void)data; }
  void broadcast(std::string& text);
  void broadcast(std::span<float> values) { broadcast(std::as_writable_bytes(values)); }

  /// In place, the element-wise sum over ranks: every rank gets the same bits. Deterministic: the
  /// ranks' values combined in a fixed pairwise tree ((r0 + r1) + (r2 + r3)), so the result is
  /// the tree sum of the ranks' parts whatever rank holds which (the rank count must be a power
  /// of two); otherwise MPI's all-reduce (faster, order up to the MPI library).
  virtual void sum(std::span<float> values, bool deterministic) { (void)values, (void)deterministic; }
  /// Small sums (totals, statistics): the fixed tree when the rank count is a power of two.
  virtual void sum(std::span<double> values) { (void)values; }
  /// True on every rank when `flag` is true on some rank (a stop request: all leave together).
  [[nodiscard]] bool any(bool flag) {
    double count = flag ? 1 : 0;
    sum(std::span<double>(&count, 1));
    return count > 0;
  }

  /// Every rank's `mine` (all the same size), in rank order, into `all` (size() times as long).
  virtual void all_gather(std::span<const float> mine, std::span<float> all) {
    std::copy(mine.begin(), mine.end(), all.begin());
  }

  /// Starts summing `values` (in place) over ranks without waiting; progress() lets MPI move
  /// (called between backward ops), finish_sums() waits for every started sum.
  virtual void start_sum(std::span<float> values) { (void)values; }
  virtual void progress() {}
  virtual void finish_sums() {}

  /// Seconds a rank waits for the others before it declares one stopped or hung.
  void set_timeout(double seconds) { timeout_seconds_ = seconds; }
  [[nodiscard]] double timeout() const { return timeout_seconds_; }

 protected:
  std::string phase_ = "setup";
  double timeout_seconds_ = 60;
};

/// True when this process was started by mpirun (OpenMPI's or a PMI launcher's variables are set).
[[nodiscard]] bool launched_by_mpirun();
/// Whether this build has MPI.
[[nodiscard]] bool built_with_mpi();

/// MPI's communicator when launched by mpirun (MPI is initialised on the first call and finalised
/// at exit), else one process. Throws Error when launched by mpirun in a build without MPI.
[[nodiscard]] Communicator& world();

/// Stops every rank of the job at once (MPI_Abort) after a rank's own failure; a single process
/// returns. For the command-line tool, never the library's code paths.
void abort_job(int code);

}  // namespace convnet

// One process's communicator, the launcher check and the choice of MPI (mpi_communicator.cpp).
#include "convnet/distributed/communicator.hpp"

#include <cstdlib>

#include "convnet/distributed/mpi_communicator.hpp"

namespace convnet {

void Communicator::broadcast(std::string& text) {
  if (size() == 1) return;
  uint64_t length = text.size();
  broadcast(std::as_writable_bytes(std::span(&length, 1)));
  text.resize(static_cast<size_t>(length));
  broadcast(std::as_writable_bytes(std::span(text.data(), text.size())));
}

bool launched_by_mpirun() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(variable) != nullptr) return true;
  }
  return false;
}

bool built_with_mpi() { return mpi_available(); }

Communicator& world() {
  static std::unique_ptr<Communicator> instance = [] {
    if (!launched_by_mpirun()) return std::make_unique<Communicator>();
    if (!built_with_mpi()) {
      throw Error("started by mpirun, but this convnet was built without MPI: install Debian's libopenmpi-dev "
                  "and openmpi-bin and rebuild");
    }
    return make_mpi_communicator();
  }();
  return *instance;
}

void abort_job(int code) { abort_mpi_job(code); }

}  // namespace convnet

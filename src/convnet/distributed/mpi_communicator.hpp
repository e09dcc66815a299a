// The MPI communicator behind world(), compiled with MPI when the build found it (CONVNET_WITH_MPI)
// and as stubs that refuse otherwise. Internal to the library.
#pragma once

#include <memory>

#include "convnet/distributed/communicator.hpp"

namespace convnet {

[[nodiscard]] bool mpi_available();
/// Initialises MPI (thread level "funneled": only the main thread calls it) on MPI_COMM_WORLD.
[[nodiscard]] std::unique_ptr<Communicator> make_mpi_communicator();
/// MPI_Abort on the world when MPI is running; nothing otherwise.
void abort_mpi_job(int code);

}  // namespace convnet

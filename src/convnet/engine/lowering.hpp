// Internals of a Plan: the values (activations with their memory descriptors), the storages they
// share in the arena, the ops (a oneDNN primitive or host code each), and the lowering of each
// layer kind to ops with its fusions. Only plan.cpp and lower_*.cpp include this.
#pragma once

#include <dnnl.hpp>

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "convnet/compute.hpp"
#include "convnet/engine/plan.hpp"

namespace convnet {

namespace engine {

using Desc = dnnl::memory::desc;
using Args = std::unordered_map<int, dnnl::memory>;

/// An activation: its descriptor (layout included) and the arena storage that holds it. Several
/// values share a storage when one is computed in place of another, or reshapes it.
struct Value {
  Desc desc;
  int storage = -1;
  float scale = 1.0F;  // int8 values: the real number is the stored integer times this
};

struct Storage {
  int64_t bytes = 0;
  int first = -1;       // first op touching it
  int last = -1;        // last op touching it
  int64_t offset = 0;   // in the arena
  bool pinned = false;  // a tap: lives to the end of the plan
  std::vector<int> nodes;  // graph nodes whose output lives here
};

struct Op {
  PlanStep info;
  int node = -1;                                  // charged in profiles
  dnnl::primitive primitive;
  std::vector<std::pair<int, int>> value_args;    // (DNNL_ARG_*, value id)
  Args fixed_args;                                // weights, statistics, outputs: outside the arena
  Desc scratchpad;
  std::function<void(std::vector<Tensor>&)> host; // instead of a primitive: plain views of host_values
  std::vector<int> host_values;                   // value ids, plain layout
  std::vector<Tensor> views;                      // bound after the arena is laid out
  Args bound;                                     // every argument, bound after layout
  std::vector<dnnl_exec_arg_t> c_args;            // the same for the C API (no allocation per run)
};

}  // namespace engine

struct Plan::Compiled {
  dnnl::engine engine;
  dnnl::stream stream;
  std::vector<engine::Value> values;
  std::vector<engine::Storage> storages;
  std::vector<engine::Op> ops;
  std::vector<std::function<void()>> weight_updates;  // refresh reordered / folded weights
  std::vector<dnnl::memory> owned;                     // weight copies and folding buffers
  int64_t weight_bytes = 0;
  int64_t arena_bytes = 0;
  int64_t scratchpad_bytes = 0;
  int64_t output_bytes = 0;
  int64_t fold_floats = 0;                             // largest weight folded then reordered
  Tensor fold_buffer;                                  // (fold_floats)
  int forward_ops = 0;                                 // ops [0, forward_ops) are the forward
  std::vector<std::vector<int>> grads_final_after;     // per op: nodes whose parameter gradients it completes
  std::vector<int> value_of;                           // per node
  std::vector<std::vector<float>> weight_scales;       // int8: per node, its s8 weights' scales
  std::vector<int> input_values;                       // per net input
  std::vector<const float*> user_inputs;               // set by forward()
  const float* user_grad_output = nullptr;             // set by backward()
  Tensor arena;                                        // (arena bytes / 4)
  Tensor scratchpad;                                   // (scratchpad bytes / 4)
  Tensor output;                                       // (batch, ...output shape)
  Tensor saved_grads;                                  // (gradient block): an accumulating backward's copy
  uint64_t weights_version = 0;
  bool profiling = false;
  std::vector<double> node_seconds;
  std::vector<double> node_backward_seconds;
};

namespace engine {

/// Lowers a net into `c` (values, storages, ops, weight updates); the caller lays out the arena.
void lower(const Net& net, ParamStore& params, const PlanOptions& options, Plan::Compiled& c);

/// A plain descriptor (nchw, nc, ... by rank) of dims, f32 unless told.
[[nodiscard]] Desc plain_desc(const dnnl::memory::dims& dims,
                              dnnl::memory::data_type dt = dnnl::memory::data_type::f32);

}  // namespace engine
}  // namespace convnet

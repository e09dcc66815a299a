// The oneDNN CPU engine and stream one Executor uses for all its fast-path kernels.
#pragma once

#include <dnnl.hpp>

namespace convnet::onednn {

class Engine {
 public:
  Engine() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}
  [[nodiscard]] dnnl::engine& engine() { return engine_; }
  [[nodiscard]] dnnl::stream& stream() { return stream_; }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
};

}  // namespace convnet::onednn

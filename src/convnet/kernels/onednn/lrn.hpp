// Layout: x, y (N, C, P) with P = H*W (P = 1 for (N, C) vectors), plain float32.
// oneDNN local response normalisation across channels with the meaning of reference/lrn.hpp
// (PyTorch's LocalResponseNorm: alpha is divided by size, as oneDNN also does). oneDNN centres an
// even window differently from PyTorch, so even sizes run the reference loops instead.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "convnet/kernels/onednn/common.hpp"
#include "convnet/kernels/reference/lrn.hpp"

namespace convnet::kernels::onednn {

using reference::LrnGeometry;

/// One LRN layer's primitives. A training forward keeps oneDNN's workspace inside the object for
/// backward; backward recomputes what else it needs from x.
class LocalResponseNorm {
 public:
  /// y = x * (k + alpha/size * sum over the channel window of x^2)^-beta
  void forward(Engine& engine, const LrnGeometry& g, bool training, const float* input, float* output);

  /// dL/dx_j = dL/dy_j s_j^-beta - 2 alpha beta/size x_j sum_{c: j in window(c)} dL/dy_c x_c s_c^(-beta-1);
  /// needs the last forward to have been a training forward of g on the same x.
  void backward(Engine& engine, const LrnGeometry& g, const float* input, const float* grad_output,
                float* grad_input, bool accumulate);

 private:
  using Key = std::array<int64_t, 9>;
  struct Forward {
    Key key{};
    Step step;
    Input src;
    Output dst;
  };
  struct Backward {
    Key key{};
    Step step;
    Input src, diff_dst;
    Output diff_src;
  };

  Forward forward_;
  Backward backward_;
  bool has_forward_ = false, has_backward_ = false;
  dnnl::memory workspace_;
  Key workspace_key_{};  // the training forward the workspace belongs to
  std::vector<float> scale_;  // even sizes: the reference's saved scale
};

}  // namespace convnet::kernels::onednn

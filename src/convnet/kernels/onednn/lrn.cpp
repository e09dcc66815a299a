// Layout: x, y (N, C, P) with P = H*W, plain float32.
#include "convnet/kernels/onednn/lrn.hpp"
#include "convnet/kernels/reference/contract.hpp"

#include <bit>

namespace convnet::kernels::onednn {

namespace {

std::array<int64_t, 9> lrn_key(Engine& engine, const LrnGeometry& g, bool training) {
  return {g.batch,
          g.channels,
          g.positions,
          g.size,
          std::bit_cast<int64_t>(g.alpha),
          std::bit_cast<int64_t>(g.beta),
          std::bit_cast<int64_t>(g.k),
          training ? 1 : 0,
          engine_id(engine)};
}

dnnl::memory::desc lrn_desc(const LrnGeometry& g) {
  return f32_desc({g.batch, g.channels, g.positions, 1}, Tag::nchw);
}

dnnl::lrn_forward::primitive_desc forward_pd(Engine& engine, const LrnGeometry& g, bool training) {
  // oneDNN: dst = src * (k + alpha / size * sum src^2)^-beta, the same alpha convention as PyTorch.
  const dnnl::lrn_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
      dnnl::algorithm::lrn_across_channels, lrn_desc(g), g.size, static_cast<float>(g.alpha),
      static_cast<float>(g.beta), static_cast<float>(g.k));
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void LocalResponseNorm::forward(Engine& engine, const LrnGeometry& g, bool training, const float* input,
                                float* output) {
  if (g.size % 2 == 0) {  // oneDNN's even window is c-(size-1)/2 .. c+size/2, PyTorch's c-size/2 .. c+(size-1)/2
    scale_.resize(static_cast<size_t>(g.batch * g.channels * g.positions));
    reference::lrn_forward(g, input, output, scale_.data());
    return;
  }
  const Key key = lrn_key(engine, g, training);
  if (!has_forward_ || forward_.key != key) {
    const auto pd = forward_pd(engine, g, training);
    const dnnl::engine& e = engine.engine();
    forward_ = {key, Step(pd, e), Input(e, lrn_desc(g), pd.src_desc()), Output(e, lrn_desc(g), pd.dst_desc())};
    if (training) workspace_ = dnnl::memory(pd.workspace_desc(), e);
    has_forward_ = true;
  }
  Forward& f = forward_;
  Args args{{DNNL_ARG_SRC, f.src.bind(engine, input)}, {DNNL_ARG_DST, f.dst.target(output, false)}};
  if (training) args.emplace(DNNL_ARG_WORKSPACE, workspace_);
  f.step.run(engine, std::move(args));
  f.dst.finish(engine, output, false);
  engine.stream().wait();
  workspace_key_ = training ? key : Key{};
}

void LocalResponseNorm::backward(Engine& engine, const LrnGeometry& g, const float* input, const float* grad_output,
                                 float* grad_input, bool accumulate) {
  // dL/dx_j = dL/dy_j s_j^-beta - 2 alpha beta/size x_j sum_{c: j in window(c)} dL/dy_c x_c s_c^(-beta-1)
  if (grad_input == nullptr) return;
  if (g.size % 2 == 0) {
    reference::lrn_backward(g, input, scale_.data(), grad_output, grad_input, accumulate);
    return;
  }
  const Key key = lrn_key(engine, g, true);
  if (!has_backward_ || backward_.key != key) {
    const auto hint = forward_pd(engine, g, true);
    const dnnl::lrn_backward::desc desc(dnnl::algorithm::lrn_across_channels, lrn_desc(g), lrn_desc(g), g.size,
                                        static_cast<float>(g.alpha), static_cast<float>(g.beta),
                                        static_cast<float>(g.k));
    const dnnl::lrn_backward::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
    const dnnl::engine& e = engine.engine();
    backward_ = {key, Step(pd, e), Input(e, lrn_desc(g), pd.src_desc()), Input(e, lrn_desc(g), pd.diff_dst_desc()),
                 Output(e, lrn_desc(g), pd.diff_src_desc())};
    has_backward_ = true;
  }
  kernels::reference::require(workspace_key_ == key, "onednn lrn backward",
                              "a training forward of the same geometry first (its workspace)");
  Backward& b = backward_;
  b.step.run(engine, {{DNNL_ARG_SRC, b.src.bind(engine, input)},
                      {DNNL_ARG_DIFF_DST, b.diff_dst.bind(engine, grad_output)},
                      {DNNL_ARG_WORKSPACE, workspace_},
                      {DNNL_ARG_DIFF_SRC, b.diff_src.target(grad_input, accumulate)}});
  b.diff_src.finish(engine, grad_input, accumulate);
  engine.stream().wait();
}

}  // namespace convnet::kernels::onednn

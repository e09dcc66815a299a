// Layout: x, y (N, C, P), plain float32.
#include "convnet/kernels/onednn/softmax.hpp"


namespace convnet::kernels::onednn {

namespace {

std::array<int64_t, 4> softmax_key(Engine& engine, const SoftmaxGeometry& g) {
  return {g.batch, g.channels, g.positions, engine_id(engine)};
}

dnnl::memory::desc softmax_desc(const SoftmaxGeometry& g) {
  return f32_desc({g.batch, g.channels, g.positions}, Tag::abc);
}

dnnl::softmax_forward::primitive_desc forward_pd(Engine& engine, const SoftmaxGeometry& g) {
  const dnnl::softmax_forward::desc desc(dnnl::prop_kind::forward_training, softmax_desc(g), 1);
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void Softmax::forward(Engine& engine, const SoftmaxGeometry& g, const float* input, float* output) {
  const Key key = softmax_key(engine, g);
  if (!forward_.built || forward_.key != key) forward_ = {key, Step(forward_pd(engine, g), engine.engine()), true};
  const dnnl::engine& e = engine.engine();
  forward_.step.run(engine, {{DNNL_ARG_SRC, dnnl::memory(softmax_desc(g), e, handle(input))},
                             {DNNL_ARG_DST, dnnl::memory(softmax_desc(g), e, output)}});
  engine.stream().wait();
}

void Softmax::backward(Engine& engine, const SoftmaxGeometry& g, const float* output, const float* grad_output,
                       float* grad_input, bool accumulate) {
  // dL/dx_c = y_c (dL/dy_c - sum_c' dL/dy_c' y_c')
  if (grad_input == nullptr) return;
  const Key key = softmax_key(engine, g);
  const dnnl::engine& e = engine.engine();
  const auto md = softmax_desc(g);
  if (!backward_.built || backward_.key != key) {
    const auto hint = forward_pd(engine, g);
    const dnnl::softmax_backward::desc desc(md, md, 1);
    const dnnl::softmax_backward::primitive_desc pd(desc, scratchpad_attr(), e, hint);
    backward_ = {key, Step(pd, e), true};
    diff_src_ = Output(e, md, pd.diff_src_desc());
  }
  backward_.step.run(engine, {{DNNL_ARG_DST, dnnl::memory(md, e, handle(output))},
                              {DNNL_ARG_DIFF_DST, dnnl::memory(md, e, handle(grad_output))},
                              {DNNL_ARG_DIFF_SRC, diff_src_.target(grad_input, accumulate)}});
  diff_src_.finish(engine, grad_input, accumulate);
  engine.stream().wait();
}

}  // namespace convnet::kernels::onednn

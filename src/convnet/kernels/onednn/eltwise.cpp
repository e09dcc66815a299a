// Layout: a flat buffer of n float32 elements.
#include "convnet/kernels/onednn/eltwise.hpp"

#include <bit>

namespace convnet::kernels::onednn {

namespace {

dnnl::algorithm eltwise_algorithm(EltwiseKind kind) {
  switch (kind) {
    case EltwiseKind::Relu:
    case EltwiseKind::LeakyRelu:
      return dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    case EltwiseKind::Elu:
      return dnnl::algorithm::eltwise_elu_use_dst_for_bwd;
    case EltwiseKind::Sigmoid:
      return dnnl::algorithm::eltwise_logistic_use_dst_for_bwd;
    case EltwiseKind::Tanh:
      return dnnl::algorithm::eltwise_tanh_use_dst_for_bwd;
  }
  return dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
}

float eltwise_alpha(EltwiseKind kind, float alpha) {
  return kind == EltwiseKind::LeakyRelu || kind == EltwiseKind::Elu ? alpha : 0.0F;
}

std::array<int64_t, 4> eltwise_key(Engine& engine, EltwiseKind kind, float alpha, int64_t n) {
  return {static_cast<int64_t>(kind), static_cast<int64_t>(std::bit_cast<uint32_t>(eltwise_alpha(kind, alpha))), n,
          engine_id(engine)};
}

dnnl::eltwise_forward::primitive_desc forward_pd(Engine& engine, EltwiseKind kind, float alpha, int64_t n) {
  const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, eltwise_algorithm(kind),
                                         f32_desc({n}, Tag::a), eltwise_alpha(kind, alpha), 0.0F);
  return {desc, scratchpad_attr(), engine.engine()};
}

}  // namespace

void Eltwise::forward(Engine& engine, EltwiseKind kind, float alpha, int64_t n, const float* input, float* output) {
  const Key key = eltwise_key(engine, kind, alpha, n);
  if (!forward_.built || forward_.key != key) {
    forward_ = {key, Step(forward_pd(engine, kind, alpha, n), engine.engine()), true};
  }
  const dnnl::engine& e = engine.engine();
  forward_.step.run(engine, {{DNNL_ARG_SRC, dnnl::memory(f32_desc({n}, Tag::a), e, handle(input))},
                             {DNNL_ARG_DST, dnnl::memory(f32_desc({n}, Tag::a), e, output)}});
  engine.stream().wait();
}

void Eltwise::backward(Engine& engine, EltwiseKind kind, float alpha, int64_t n, const float* output,
                       const float* grad_output, float* grad_input, bool accumulate) {
  // dL/dx = dL/dy * f'(x), with f' expressed through y = f(x)
  if (grad_input == nullptr) return;
  const Key key = eltwise_key(engine, kind, alpha, n);
  const dnnl::engine& e = engine.engine();
  const auto md = f32_desc({n}, Tag::a);
  if (!backward_.built || backward_.key != key) {
    const auto hint = forward_pd(engine, kind, alpha, n);
    const dnnl::eltwise_backward::desc desc(eltwise_algorithm(kind), md, md, eltwise_alpha(kind, alpha), 0.0F);
    const dnnl::eltwise_backward::primitive_desc pd(desc, scratchpad_attr(), e, hint);
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

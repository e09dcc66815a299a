// Layout: x (N, C, in_h, in_w), y (N, C, out_h, out_w), plain float32 NCHW.
#include "convnet/kernels/onednn/pool2d.hpp"
#include "convnet/kernels/reference/contract.hpp"

#include <algorithm>

namespace convnet::kernels::onednn::detail {

namespace {

struct PoolDescs {
  dnnl::memory::desc src, dst;
  Dims strides, kernel, pad_l, pad_r;
};

PoolDescs pool_descs(const Pool2dGeometry& g) {
  return {f32_desc({g.batch, g.channels, g.in_h, g.in_w}, Tag::nchw),
          f32_desc({g.batch, g.channels, g.out_h, g.out_w}, Tag::nchw),
          {g.stride_h, g.stride_w},
          {g.kernel_h, g.kernel_w},
          {g.pad_h, g.pad_w},
          {right_padding(g.in_h, g.out_h, g.stride_h, g.kernel_h, g.pad_h),
           right_padding(g.in_w, g.out_w, g.stride_w, g.kernel_w, g.pad_w)}};
}

std::array<int64_t, 14> pool_key(Engine& engine, const Pool2dGeometry& g, bool training) {
  return {g.batch,    g.channels, g.in_h,  g.in_w,  g.out_h,       g.out_w,
          g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
          training ? 1 : 0, engine_id(engine)};
}

dnnl::pooling_forward::primitive_desc forward_pd(Engine& engine, dnnl::algorithm algorithm, const PoolDescs& d,
                                                 bool training) {
  const dnnl::pooling_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, algorithm, d.src, d.dst,
      d.strides, d.kernel, d.pad_l, d.pad_r);
  return {desc, scratchpad_attr(), engine.engine()};
}

/// kernel / reference divisor extent for each output position along one axis.
std::vector<float> axis_factors(int64_t out, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  std::vector<float> factors(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const int64_t extent = reference::avg_window_1d(o, stride, pad, kernel, in).extent;
    factors[static_cast<size_t>(o)] = static_cast<float>(kernel) / static_cast<float>(extent);
  }
  return factors;
}

}  // namespace

void Pool2dPrimitives::update_correction(Engine& engine, const Pool2dGeometry& g) {
  if (algorithm_ != dnnl::algorithm::pooling_avg_include_padding) return;
  const Key key = pool_key(engine, g, false);
  if (has_correction_ && correction_key_ == key) return;
  correction_key_ = key;
  has_correction_ = true;
  factor_h_ = axis_factors(g.out_h, g.stride_h, g.pad_h, g.kernel_h, g.in_h);
  factor_w_ = axis_factors(g.out_w, g.stride_w, g.pad_w, g.kernel_w, g.in_w);
  auto not_one = [](float f) { return f != 1.0F; };
  corrected_ = std::any_of(factor_h_.begin(), factor_h_.end(), not_one) ||
               std::any_of(factor_w_.begin(), factor_w_.end(), not_one);
  scaled_grad_.assign(corrected_ ? static_cast<size_t>(g.batch * g.channels * g.out_h * g.out_w) : 0, 0.0F);
}

void Pool2dPrimitives::forward(Engine& engine, const Pool2dGeometry& g, bool training, const float* input,
                               float* output) {
  const bool keep_workspace = training && algorithm_ == dnnl::algorithm::pooling_max;
  const Key key = pool_key(engine, g, keep_workspace);
  if (!has_forward_ || forward_.key != key) {
    const PoolDescs d = pool_descs(g);
    const auto pd = forward_pd(engine, algorithm_, d, keep_workspace);
    const dnnl::engine& e = engine.engine();
    forward_ = {key, Step(pd, e), Input(e, d.src, pd.src_desc()), Output(e, d.dst, pd.dst_desc())};
    if (keep_workspace) workspace_ = dnnl::memory(pd.workspace_desc(), e);
    has_forward_ = true;
  }
  update_correction(engine, g);
  Forward& f = forward_;
  Args args{{DNNL_ARG_SRC, f.src.bind(engine, input)}, {DNNL_ARG_DST, f.dst.target(output, false)}};
  if (keep_workspace) args.emplace(DNNL_ARG_WORKSPACE, workspace_);
  f.step.run(engine, std::move(args));
  f.dst.finish(engine, output, false);
  engine.stream().wait();
  has_workspace_ = keep_workspace;
  workspace_key_ = key;
  if (corrected_) {
    for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        float* row = output + (plane * g.out_h + oh) * g.out_w;
        const float fh = factor_h_[static_cast<size_t>(oh)];
        for (int64_t ow = 0; ow < g.out_w; ++ow) row[ow] *= fh * factor_w_[static_cast<size_t>(ow)];
      }
    }
  }
}

void Pool2dPrimitives::backward(Engine& engine, const Pool2dGeometry& g, const float* grad_output,
                                float* grad_input, bool accumulate) {
  // max: dL/dx[argmax(o)] += dL/dy[o];  avg: dL/dx[i] = sum_{o: i in window(o)} dL/dy[o] / divisor(o)
  if (grad_input == nullptr) return;
  const bool max = algorithm_ == dnnl::algorithm::pooling_max;
  const Key key = pool_key(engine, g, max);
  if (!has_backward_ || backward_.key != key) {
    const PoolDescs d = pool_descs(g);
    const auto hint = forward_pd(engine, algorithm_, d, true);
    const dnnl::pooling_backward::desc desc(algorithm_, d.src, d.dst, d.strides, d.kernel, d.pad_l, d.pad_r);
    const dnnl::pooling_backward::primitive_desc pd(desc, scratchpad_attr(), engine.engine(), hint);
    const dnnl::engine& e = engine.engine();
    backward_ = {key, Step(pd, e), Input(e, d.dst, pd.diff_dst_desc()), Output(e, d.src, pd.diff_src_desc())};
    has_backward_ = true;
  }
  update_correction(engine, g);
  kernels::reference::require(!max || (has_workspace_ && workspace_key_ == key), "onednn max pool backward",
                              "a training forward of the same geometry first (its workspace)");
  Backward& b = backward_;
  const float* dy = grad_output;
  if (corrected_) {  // oneDNN divides by the full window: pre-scale by full window / reference divisor
    for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t row = (plane * g.out_h + oh) * g.out_w;
        const float fh = factor_h_[static_cast<size_t>(oh)];
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          scaled_grad_[static_cast<size_t>(row + ow)] = grad_output[row + ow] * fh * factor_w_[static_cast<size_t>(ow)];
        }
      }
    }
    dy = scaled_grad_.data();
  }
  Args args{{DNNL_ARG_DIFF_DST, b.diff_dst.bind(engine, dy)},
            {DNNL_ARG_DIFF_SRC, b.diff_src.target(grad_input, accumulate)}};
  if (max) args.emplace(DNNL_ARG_WORKSPACE, workspace_);  // from the training forward (the layer's contract)
  b.step.run(engine, std::move(args));
  b.diff_src.finish(engine, grad_input, accumulate);
  engine.stream().wait();
}

}  // namespace convnet::kernels::onednn::detail

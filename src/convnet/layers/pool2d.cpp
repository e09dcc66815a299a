// Pooling: shapes, receptive fields and forward/backward. MACs stay 0: by convention only
// multiplications by weights are counted (conv, fc, ...), not pooling's comparisons and sums.
#include "convnet/layers/pool2d.hpp"

#include <algorithm>
#include "convnet/layers/compute_util.hpp"
#include "convnet/kernels/reference/pool2d.hpp"

#include "convnet/error.hpp"
#include "convnet/layers/format.hpp"

namespace convnet {
namespace {

// Max pooling takes asymmetric padding (pad_end); average pooling does not, since its divisor
// (the window clipped to input + padding) would need the compiled plan to know both sides.
Pool2dOptions pool_from_args(LayerArgs& args, bool allow_pad_end) {
  Pool2dOptions o;
  o.window.kernel = args.size2("kernel_size");
  o.window.stride = args.option_size2("stride", 1).value_or(o.window.kernel);
  if (allow_pad_end) {
    read_window_padding(args, o.window);
  } else {
    o.window.padding = args.option_size2("pad", 0).value_or(Size2{0, 0});
  }
  o.window.rounding = args.rounding();
  args.finish();
  return o;
}

std::string pool_args(const Pool2dOptions& o) {
  return size2_string(o.window.kernel) + window_args(o.window, o.window.kernel);
}

// (C, H, W) -> (C, H2, W2). PyTorch refuses padding of more than half the window.
Shape pool_output(std::span<const Shape> inputs, const Pool2dOptions& o, const char* kind) {
  require_volume(inputs, kind);
  const Window& w = o.window;
  for (const Size2& pad : {w.padding, w.end_padding()}) {
    if (pad.h > w.kernel.h / 2 || pad.w > w.kernel.w / 2) {
      throw ShapeError("padding " + size2_string(pad) + " is more than half the " + size2_string(w.kernel) +
                       " pooling window (PyTorch requires pad <= " + size2_string({w.kernel.h / 2, w.kernel.w / 2}) +
                       ")");
    }
  }
  const Size2 hw = window_output(inputs[0], w, "pooling window");
  return {inputs[0].channels(), hw.h, hw.w};
}

std::vector<Formula> pool_formulas(std::span<const Shape> inputs, const Pool2dOptions& o, const Shape& output) {
  std::vector<Formula> lines = window_formulas(inputs[0], o.window, output);
  lines.push_back({"output depth", "D2 = D1", std::to_string(inputs[0].channels()), std::to_string(output.channels())});
  lines.push_back({"parameters", "none (a fixed function)", "0", "0"});
  return lines;
}

}  // namespace

std::unique_ptr<Layer> MaxPool2d::from_args(LayerArgs& args) {
  return std::make_unique<MaxPool2d>(pool_from_args(args, true));
}

std::string MaxPool2d::args() const { return pool_args(options_); }

Shape MaxPool2d::output_shape(std::span<const Shape> inputs) const { return pool_output(inputs, options_, "maxpool"); }

ReceptiveField MaxPool2d::receptive_field(const ReceptiveField& input) const {
  return window_receptive_field(input, options_.window);
}

std::vector<Formula> MaxPool2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  return pool_formulas(inputs, options_, output);
}

std::unique_ptr<Layer> AvgPool2d::from_args(LayerArgs& args) {
  return std::make_unique<AvgPool2d>(pool_from_args(args, false));
}

std::string AvgPool2d::args() const { return pool_args(options_); }

Shape AvgPool2d::output_shape(std::span<const Shape> inputs) const { return pool_output(inputs, options_, "avgpool"); }

ReceptiveField AvgPool2d::receptive_field(const ReceptiveField& input) const {
  return window_receptive_field(input, options_.window);
}

std::vector<Formula> AvgPool2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  return pool_formulas(inputs, options_, output);
}

std::unique_ptr<Layer> GlobalAvgPool2d::from_args(LayerArgs& args) {
  args.finish();
  return std::make_unique<GlobalAvgPool2d>();
}

Shape GlobalAvgPool2d::output_shape(std::span<const Shape> inputs) const {
  require_volume(inputs, "globalavgpool");
  return {inputs[0].channels(), 1, 1};
}

ReceptiveField GlobalAvgPool2d::receptive_field(const ReceptiveField& input) const {
  ReceptiveField out = input;
  out.global = true;
  return out;
}

std::vector<Formula> GlobalAvgPool2d::explain(std::span<const Shape> inputs, const Shape& output) const {
  return {{"output volume", "1x1xD1 (average over H1*W1)",
           "1x1x" + std::to_string(inputs[0].channels()) + " (over " +
               product_string({inputs[0].height(), inputs[0].width()}) + ")",
           output.volume_string()}};
}

}  // namespace convnet

// ----- compute -----

namespace convnet {
namespace {

kernels::reference::Pool2dGeometry pool_geometry(const Tensor& x, const Tensor& y, const Window& w) {
  return {.batch = x.dim(0), .channels = x.dim(1), .in_h = x.dim(2), .in_w = x.dim(3), .out_h = y.dim(2),
          .out_w = y.dim(3), .kernel_h = w.kernel.h, .kernel_w = w.kernel.w, .stride_h = w.stride.h,
          .stride_w = w.stride.w, .pad_h = w.padding.h, .pad_w = w.padding.w};
}

}  // namespace

void MaxPool2d::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, pool_geometry(*inputs[0], output, options_.window), ctx.training || ctx.backward_follows, inputs[0]->data(),
                    output.data());
    return;
  }
  argmax_.resize(static_cast<size_t>(output.numel()));
  kernels::reference::max_pool2d_forward(pool_geometry(*inputs[0], output, options_.window), inputs[0]->data(),
                                         output.data(), argmax_.data());
}
void MaxPool2d::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params,
                         Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, pool_geometry(*inputs[0], output, options_.window), grad_output.data(), dx,
                       grad_inputs[0].accumulate);
      return;
    }
    kernels::reference::max_pool2d_backward(pool_geometry(*inputs[0], output, options_.window), argmax_.data(),
                                            grad_output.data(), dx, grad_inputs[0].accumulate);
  }
}

void AvgPool2d::forward(const RunContext& ctx, Inputs inputs, Params, Tensor& output) {
  if (ctx.backend == Backend::OneDnn) {
    onednn_.forward(*ctx.engine, pool_geometry(*inputs[0], output, options_.window), inputs[0]->data(), output.data());
    return;
  }
  kernels::reference::avg_pool2d_forward(pool_geometry(*inputs[0], output, options_.window), inputs[0]->data(),
                                         output.data());
}
void AvgPool2d::backward(const RunContext& ctx, Inputs inputs, const Tensor& output, const Tensor& grad_output, Params,
                         Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    if (ctx.backend == Backend::OneDnn) {
      onednn_.backward(*ctx.engine, pool_geometry(*inputs[0], output, options_.window), grad_output.data(), dx,
                       grad_inputs[0].accumulate);
      return;
    }
    kernels::reference::avg_pool2d_backward(pool_geometry(*inputs[0], output, options_.window), grad_output.data(),
                                            dx, grad_inputs[0].accumulate);
  }
}

void GlobalAvgPool2d::forward(const RunContext&, Inputs inputs, Params, Tensor& output) {
  const Tensor& x = *inputs[0];
  kernels::reference::global_avg_pool2d_forward({x.dim(0), x.dim(1), x.dim(2), x.dim(3)}, x.data(), output.data());
}
void GlobalAvgPool2d::backward(const RunContext&, Inputs inputs, const Tensor&, const Tensor& grad_output, Params,
                               Params, GradTargets grad_inputs) {
  if (float* dx = target_or_null(grad_inputs[0])) {
    const Tensor& x = *inputs[0];
    kernels::reference::global_avg_pool2d_backward({x.dim(0), x.dim(1), x.dim(2), x.dim(3)}, grad_output.data(), dx,
                                                   grad_inputs[0].accumulate);
  }
}

}  // namespace convnet

// Plumbing shared by the oneDNN kernels: plain (NCHW / OIHW) memory descriptors, a primitive with
// its own scratchpad, and the two boundary stages between the caller's plain buffers and the
// formats oneDNN chose (Input: reorder in; Output: reorder or copy out, overwriting or adding).
// Layout: every caller buffer is contiguous float32 in the layouts of docs/kernels.md.
#pragma once

#include <dnnl.hpp>

#include <cstdint>
#include <unordered_map>
#include <utility>

#include "convnet/kernels/onednn/engine.hpp"

namespace convnet::kernels::onednn {

using Engine = convnet::onednn::Engine;
using Dims = dnnl::memory::dims;
using Tag = dnnl::memory::format_tag;
using Args = std::unordered_map<int, dnnl::memory>;

/// A float32 descriptor in a fixed plain layout, or with the layout left to oneDNN (Tag::any).
[[nodiscard]] inline dnnl::memory::desc f32_desc(const Dims& dims, Tag tag) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, tag);
}

/// Every primitive here is created with a user-owned scratchpad (no library-global buffers).
[[nodiscard]] inline dnnl::primitive_attr scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

/// Identifies the oneDNN engine in cache keys. Every Step holds a reference to its engine, so the
/// handle of an engine that cached primitives were made for cannot be reused by a new engine.
[[nodiscard]] inline int64_t engine_id(Engine& engine) {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(engine.engine().get()));
}

/// A primitive and the scratchpad it owns; run() adds the scratchpad to the arguments.
class Step {
 public:
  Step() = default;
  template <class PrimitiveDesc>
  Step(const PrimitiveDesc& pd, const dnnl::engine& engine)
      : engine_(engine), primitive_(pd.get()), scratchpad_(pd.scratchpad_desc(), engine) {}

  void run(Engine& engine, Args args) {
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_);
    primitive_.execute(engine.stream(), args);
  }

 private:
  dnnl::engine engine_;  // keeps the engine (and so engine_id) alive while its primitives are cached
  dnnl::primitive primitive_;
  dnnl::memory scratchpad_;
};

[[nodiscard]] inline dnnl::memory unbound_memory(const dnnl::memory::desc& desc, const dnnl::engine& engine) {
  return dnnl::memory(desc, engine, DNNL_MEMORY_NONE);
}

[[nodiscard]] inline void* handle(const float* data) { return const_cast<float*>(data); }

/// A caller's plain input as the primitive wants it: the caller's buffer itself when the formats
/// agree, otherwise a reorder into an internal buffer (run each call: the data may have changed).
class Input {
 public:
  Input() = default;
  Input(const dnnl::engine& engine, const dnnl::memory::desc& user, const dnnl::memory::desc& chosen)
      : user_(unbound_memory(user, engine)), same_(user == chosen) {
    if (!same_) {
      internal_ = dnnl::memory(chosen, engine);
      reorder_ = Step(dnnl::reorder::primitive_desc(engine, user, engine, chosen, scratchpad_attr()), engine);
    }
  }

  /// Binds `data` and returns the memory to pass to the primitive.
  const dnnl::memory& bind(Engine& engine, const float* data) {
    user_.set_data_handle(handle(data));
    if (same_) return user_;
    reorder_.run(engine, {{DNNL_ARG_FROM, user_}, {DNNL_ARG_TO, internal_}});
    return internal_;
  }

 private:
  dnnl::memory user_, internal_;
  Step reorder_;
  bool same_ = true;
};

/// A primitive's output delivered to a caller's plain buffer: target() is the memory the
/// primitive writes, finish() (after it ran) reorders / adds into the caller's buffer.
/// accumulate = false overwrites every element, true adds; a null buffer means "not wanted"
/// (the primitive writes an internal buffer that is then dropped).
class Output {
 public:
  Output() = default;
  Output(const dnnl::engine& engine, const dnnl::memory::desc& user, const dnnl::memory::desc& chosen)
      : engine_(engine), user_(unbound_memory(user, engine)), user_desc_(user), chosen_(chosen),
        same_(user == chosen) {}

  const dnnl::memory& target(float* data, bool accumulate) {
    if (data != nullptr) user_.set_data_handle(data);
    if (same_ && data != nullptr && !accumulate) return user_;
    if (!internal_) internal_ = dnnl::memory(chosen_, engine_);
    return internal_;
  }

  void finish(Engine& engine, float* data, bool accumulate) {
    if (data == nullptr || (same_ && !accumulate)) return;
    if (same_) {  // plain layout, adding: a straight loop over the elements
      engine.stream().wait();
      const auto* source = static_cast<const float*>(internal_.get_data_handle());
      const size_t n = user_desc_.get_size() / sizeof(float);
      for (size_t i = 0; i < n; ++i) data[i] += source[i];
      return;
    }
    Step& reorder = accumulate ? reorder_sum_ : reorder_;
    if (!(accumulate ? has_sum_ : has_plain_)) {
      dnnl::primitive_attr attr = scratchpad_attr();
      if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0F);  // to = 1 * to + from
        attr.set_post_ops(ops);
      }
      reorder = Step(dnnl::reorder::primitive_desc(engine_, chosen_, engine_, user_desc_, attr), engine_);
      (accumulate ? has_sum_ : has_plain_) = true;
    }
    reorder.run(engine, {{DNNL_ARG_FROM, internal_}, {DNNL_ARG_TO, user_}});
  }

 private:
  dnnl::engine engine_;
  dnnl::memory user_, internal_;
  dnnl::memory::desc user_desc_, chosen_;
  Step reorder_, reorder_sum_;
  bool same_ = true, has_plain_ = false, has_sum_ = false;
};

/// Writes (accumulate = false) or adds (true) n values into dst.
inline void store(float* dst, const float* src, int64_t n, bool accumulate) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

/// Right padding that makes oneDNN's output-size rule give exactly `out` for a window of extent
/// `ext` (already dilated) with left padding `pad_l`: the last window ends at in + pad_r; never
/// negative (floor rounding's dropped rows simply are not read).
[[nodiscard]] inline int64_t right_padding(int64_t in, int64_t out, int64_t stride, int64_t ext, int64_t pad_l) {
  const int64_t pad_r = (out - 1) * stride + ext - in - pad_l;
  return pad_r > 0 ? pad_r : 0;
}

/// The cached steps of a layer with weights (convolution, inner product), each with the buffers
/// it binds; run() binds the caller's plain buffers, executes and delivers the outputs.
struct WeightsForward {
  Step step;
  Input src, weights, bias;
  Output dst;
  void run(Engine& engine, const float* x, const float* w, const float* b, float* y) {
    Args args{{DNNL_ARG_SRC, src.bind(engine, x)}, {DNNL_ARG_WEIGHTS, weights.bind(engine, w)},
              {DNNL_ARG_DST, dst.target(y, false)}};
    if (b != nullptr) args.emplace(DNNL_ARG_BIAS, bias.bind(engine, b));
    step.run(engine, std::move(args));
    dst.finish(engine, y, false);
    engine.stream().wait();
  }
};

struct WeightsBackwardData {
  Step step;
  Input weights, diff_dst;
  Output diff_src;
  void run(Engine& engine, const float* w, const float* dy, float* dx, bool accumulate) {
    step.run(engine, {{DNNL_ARG_WEIGHTS, weights.bind(engine, w)},
                      {DNNL_ARG_DIFF_DST, diff_dst.bind(engine, dy)},
                      {DNNL_ARG_DIFF_SRC, diff_src.target(dx, accumulate)}});
    diff_src.finish(engine, dx, accumulate);
    engine.stream().wait();
  }
};

struct WeightsBackwardWeights {
  Step step;
  Input src, diff_dst;
  Output diff_weights, diff_bias;
  void run(Engine& engine, const float* x, const float* dy, float* dw, float* db, bool accumulate) {
    Args args{{DNNL_ARG_SRC, src.bind(engine, x)},
              {DNNL_ARG_DIFF_DST, diff_dst.bind(engine, dy)},
              {DNNL_ARG_DIFF_WEIGHTS, diff_weights.target(dw, accumulate)}};
    if (db != nullptr) args.emplace(DNNL_ARG_DIFF_BIAS, diff_bias.target(db, accumulate));
    step.run(engine, std::move(args));
    diff_weights.finish(engine, dw, accumulate);
    if (db != nullptr) diff_bias.finish(engine, db, accumulate);
    engine.stream().wait();
  }
};

}  // namespace convnet::kernels::onednn

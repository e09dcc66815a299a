// The analyses behind `convnet visualize`: filters, activation maps, occlusion, gradients and
// deconvnet projections, computed with the executor's forward and backward, and their pictures.
#include "convnet/visualize/views.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "convnet/error.hpp"
#include "convnet/finite.hpp"
#include "convnet/train/evaluate.hpp"

namespace convnet {
namespace {

constexpr Rgb kInk{20, 20, 20};
constexpr Rgb kPaper{255, 255, 255};
constexpr int64_t kGap = 2;
constexpr int64_t kTextScale = 2;
constexpr int64_t kLine = 5 * kTextScale + 6;  // a line of text with its spacing

int find_node(const Net& net, const std::string& name) {
  const int id = net.find(name);
  if (id < 0) {
    std::string names;
    for (const Node& n : net.nodes()) names += (names.empty() ? "" : ", ") + n.name;
    throw Error(net.name() + " has no layer '" + name + "'; its layers: " + names);
  }
  return id;
}

/// While alive, the executor runs layer by layer, keeps every output and allows a backward after an
/// inference forward; afterwards it is as before, with its parameter gradients cleared.
class InspectMode {
 public:
  explicit InspectMode(Executor& e) : e_(e) { e_.set_input_gradients(true); }
  ~InspectMode() {
    e_.context().relu_backward = ReluBackward::Gradient;
    e_.set_input_gradients(false);
    e_.zero_grad();
  }
  InspectMode(const InspectMode&) = delete;
  InspectMode& operator=(const InspectMode&) = delete;

 private:
  Executor& e_;
};

std::vector<float> probabilities(const Tensor& logits, const std::function<std::string(int64_t)>& image) {
  std::vector<float> p(static_cast<size_t>(logits.numel()));
  class_probabilities(logits, p.data(), image);
  return p;
}

int64_t argmax(const float* v, int64_t n) { return std::max_element(v, v + n) - v; }

int64_t checked_target(int64_t target, int64_t classes) {
  if (target >= classes) {
    throw Error("class " + std::to_string(target) + " does not exist: the network has " + std::to_string(classes) +
                " outputs (0 to " + std::to_string(classes - 1) + ")");
  }
  return target;
}

/// A picture's scale factor so that its longer side is about `target` pixels.
int64_t scale_for(int64_t h, int64_t w, int64_t target) { return std::clamp<int64_t>(target / std::max(h, w), 1, 16); }

/// The image's planes as colour (3 channels) or grey (its first channel).
void draw_planes(Canvas& c, int64_t x, int64_t y, const std::vector<float>& planes, int64_t channels, int64_t h,
                 int64_t w, int64_t scale) {
  if (channels == 3) {
    c.draw_rgb(x, y, planes.data(), h, w, scale);
  } else {
    c.draw_map(x, y, planes.data(), h, w, scale, Colormap::Grey);
  }
}

/// Signed values around mid-grey: 0.5 + v / (2 max|v|).
std::vector<float> centred(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::isfinite(x) ? std::abs(x) : 0.0F);
  std::vector<float> out(v.size(), 0.5F);
  if (m > 0) {
    for (size_t i = 0; i < v.size(); ++i) out[i] = std::isfinite(v[i]) ? 0.5F + v[i] / (2 * m) : 0.5F;
  }
  return out;
}

}  // namespace

ViewImage view_image(const Dataset& data, int64_t index, const Normalization& norm) {
  const Shape& shape = data.image_shape;
  ViewImage v;
  v.channels = shape.channels();
  v.height = shape.height();
  v.width = shape.width();
  v.name = data.size() == 1 ? data.name : "image " + std::to_string(index) + " of " + data.name;
  v.input = Tensor({1, v.channels, v.height, v.width});
  normalized_image(data, index, norm, v.input.data());
  const uint8_t* raw = data.pixels.data() + index * data.image_size();
  v.pixels.resize(static_cast<size_t>(data.image_size()));
  for (size_t i = 0; i < v.pixels.size(); ++i) v.pixels[i] = static_cast<float>(raw[i]) / 255.0F;
  return v;
}

Canvas draw_filters(const Net& net, Executor& executor, const std::string& layer) {
  const int id = find_node(net, layer);
  const Node& node = net.node(id);
  if (node.params.empty() || node.params[0].dims.size() != 4) {
    std::string with;
    for (const Node& n : net.nodes()) {
      if (!n.params.empty() && n.params[0].dims.size() == 4) with += (with.empty() ? "" : ", ") + n.name;
    }
    throw Error("layer '" + layer + "' (" + node.layer->kind() +
                ") has no 2-D filters; layers with filters: " + (with.empty() ? "none" : with));
  }
  const Tensor& w = executor.parameter_store().value(static_cast<size_t>(id),
                                                     0);  // (O, I, kH, kW)
  const auto& d = node.params[0].dims;
  const int64_t out = d[0], in = d[1], kh = d[2], kw = d[3];
  // One tile per filter (in colour for 3 input channels, grey for 1) in a square grid; otherwise a
  // row per filter and a column per input channel.
  const bool rgb = in == 3;
  const bool per_filter = rgb || in == 1;
  constexpr int64_t kMaxShown = 64;
  const int64_t shown_out = std::min(out, per_filter ? 1024 : kMaxShown);
  const int64_t shown_in = per_filter ? 1 : std::min(in, kMaxShown);
  const int64_t scale = scale_for(kh, kw, 40);
  const int64_t tile_w = kw * scale + kGap;
  const int64_t tile_h = kh * scale + kGap;
  std::string title = layer + ": " + std::to_string(out) + " filters " + std::to_string(kh) + "x" + std::to_string(kw) +
                      "x" + std::to_string(in) +
                      (rgb          ? ", in colour"
                       : per_filter ? ""
                                    : ", one tile per input channel (columns)");
  if (shown_out < out) title += ", first " + std::to_string(shown_out);
  if (shown_in < in) title += ", first " + std::to_string(shown_in) + " channels";
  const int64_t label_w = per_filter ? 4 : Canvas::text_width(std::to_string(out), kTextScale) + 6;
  const int64_t cols =
      per_filter ? static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(shown_out)))) : shown_in;
  const int64_t rows = per_filter ? (shown_out + cols - 1) / cols : shown_out;
  const int64_t cell_h = per_filter ? tile_h + kLine : tile_h;
  const int64_t top = kLine + (per_filter ? 0 : kLine);
  const int64_t width = std::max(label_w + cols * tile_w, Canvas::text_width(title, kTextScale)) + 8;
  Canvas c(width, top + rows * cell_h + 4, kPaper);
  c.draw_text(4, 4, title, kInk, kTextScale);
  const int64_t plane = kh * kw;
  std::vector<float> tile;
  for (int64_t o = 0; o < shown_out; ++o) {
    const float* filter = w.data() + o * in * plane;
    if (per_filter) {
      tile.assign(filter, filter + in * plane);
      normalize_min_max(tile);
      const int64_t x = label_w + (o % cols) * tile_w;
      const int64_t y = top + (o / cols) * cell_h;
      if (rgb) {
        c.draw_rgb(x, y, tile.data(), kh, kw, scale);
      } else {
        c.draw_map(x, y, tile.data(), kh, kw, scale, Colormap::Grey);
      }
      c.draw_text(x, y + tile_h, std::to_string(o), kInk, kTextScale);
      continue;
    }
    c.draw_text(2, top + o * cell_h + (tile_h - Canvas::text_height(kTextScale)) / 2, std::to_string(o), kInk,
                kTextScale);
    for (int64_t i = 0; i < shown_in; ++i) {
      tile.assign(filter + i * plane, filter + (i + 1) * plane);
      normalize_min_max(tile);
      c.draw_map(label_w + i * tile_w, top + o * cell_h, tile.data(), kh, kw, scale, Colormap::Grey);
    }
  }
  if (!per_filter) {
    for (int64_t i = 0; i < shown_in; i += std::max<int64_t>(1, shown_in / 16)) {
      c.draw_text(label_w + i * tile_w, kLine + 2, std::to_string(i), kInk, kTextScale);
    }
  }
  return c;
}

void draw_activations(const Net& net, Executor& executor, const ViewImage& image,
                      const std::vector<std::string>& layers, const std::function<void(const ActivationView&)>& each) {
  std::vector<int> ids;
  for (const std::string& name : layers) ids.push_back(find_node(net, name));
  if (ids.empty()) {
    for (size_t i = 0; i < net.nodes().size(); ++i) {
      if (!net.nodes()[i].inputs.empty()) ids.push_back(static_cast<int>(i));
    }
  }
  InspectMode inspect(executor);
  (void)executor.forward(image.input, false);
  for (int id : ids) {
    const Node& node = net.node(id);
    const Tensor& a = *executor.activation(id);  // (1, C, H, W) or (1, F)
    const int64_t all_maps = a.dims().size() == 4 ? a.dim(1) : a.numel();
    const int64_t maps = std::min(all_maps, kMaxMaps);
    const int64_t h = a.dims().size() == 4 ? a.dim(2) : 1;
    const int64_t w = a.dims().size() == 4 ? a.dim(3) : 1;
    const int64_t scale = scale_for(h, w, 64);
    const int64_t cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(maps))));
    const int64_t rows = (maps + cols - 1) / cols;
    std::string title = node.name + " (" + node.layer->kind() + "): " + node.output.volume_string() +
                        (h * w > 1 ? ", each map scaled to its own range" : ", scaled to the layer's range");
    if (maps < all_maps) title += ", first " + std::to_string(maps) + " of " + std::to_string(all_maps);
    const int64_t grid_w = cols * (w * scale + kGap) + kGap;
    Canvas c(std::max(grid_w, Canvas::text_width(title, kTextScale) + 8), kLine + rows * (h * scale + kGap) + kGap,
             {40, 40, 40});
    c.fill_rect(0, 0, c.width(), kLine, kPaper);
    c.draw_text(4, 4, title, kInk, kTextScale);
    std::vector<float> all(a.data(), a.data() + maps * h * w);
    if (h * w == 1) normalize_min_max(all);
    for (int64_t m = 0; m < maps; ++m) {
      std::vector<float> map(all.begin() + m * h * w, all.begin() + (m + 1) * h * w);
      if (h * w > 1) normalize_min_max(map);
      c.draw_map(kGap + (m % cols) * (w * scale + kGap), kLine + kGap + (m / cols) * (h * scale + kGap), map.data(), h,
                 w, scale, Colormap::Grey);
    }
    each({id, node.name, node.output.volume_string(), std::move(c)});
  }
}

OcclusionMap occlusion(Executor& executor, const ViewImage& image, const OcclusionOptions& options) {
  const int64_t C = image.channels, H = image.height, W = image.width;
  OcclusionMap r;
  r.patch = options.patch > 0 ? options.patch : std::max<int64_t>(2, std::min(H, W) / 7);
  r.stride = options.stride > 0 ? options.stride : std::max<int64_t>(1, r.patch / 2);
  if (r.patch > std::min(H, W)) {
    throw Error("an occluding patch of " + std::to_string(r.patch) + " pixels does not fit a " + std::to_string(H) +
                "x" + std::to_string(W) + " image");
  }
  if (r.stride > r.patch) {
    throw Error("an occlusion stride of " + std::to_string(r.stride) + " above the patch side " +
                std::to_string(r.patch) + " would leave pixels never covered: use a stride of at most the patch");
  }
  if (options.batch < 1) throw Error("occlusion batch must be at least 1");
  const std::vector<float> base =
      probabilities(executor.forward(image.input, false), [&](int64_t) { return image.name; });
  const auto classes = static_cast<int64_t>(base.size());
  r.target = options.target >= 0 ? checked_target(options.target, classes) : argmax(base.data(), classes);
  r.unoccluded = base[static_cast<size_t>(r.target)];
  // Patch corners every `stride` pixels, and one flush with the far edge so every pixel is covered.
  auto corners = [&](int64_t side) {
    std::vector<int64_t> v;
    for (int64_t p = 0; p + r.patch <= side; p += r.stride) v.push_back(p);
    if (v.back() + r.patch < side) v.push_back(side - r.patch);
    return v;
  };
  const std::vector<int64_t> ys = corners(H), xs = corners(W);
  std::vector<std::pair<int64_t, int64_t>> positions;
  for (int64_t y : ys) {
    for (int64_t x : xs) positions.emplace_back(y, x);
  }
  std::vector<double> sum(static_cast<size_t>(H * W), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(H * W), 0);
  r.lowest = 1;
  const int64_t plane = H * W;
  for (size_t start = 0; start < positions.size(); start += static_cast<size_t>(options.batch)) {
    const int64_t b = std::min<int64_t>(options.batch, static_cast<int64_t>(positions.size() - start));
    Tensor batch({b, C, H, W});
    for (int64_t k = 0; k < b; ++k) {
      float* dst = batch.data() + k * C * plane;
      std::copy_n(image.input.data(), C * plane, dst);
      const auto [py, px] = positions[start + static_cast<size_t>(k)];
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t y = py; y < py + r.patch; ++y) std::fill_n(dst + c * plane + y * W + px, r.patch, 0.0F);
      }
    }
    const std::vector<float> p = probabilities(executor.forward(batch, false), [&](int64_t k) {
      const auto [py, px] = positions[start + static_cast<size_t>(k)];
      return image.name + " with the patch at (" + std::to_string(py) + ", " + std::to_string(px) + ")";
    });
    for (int64_t k = 0; k < b; ++k) {
      const float pk = p[static_cast<size_t>(k * classes + r.target)];
      r.lowest = std::min(r.lowest, pk);
      const auto [py, px] = positions[start + static_cast<size_t>(k)];
      for (int64_t y = py; y < py + r.patch; ++y) {
        for (int64_t x = px; x < px + r.patch; ++x) {
          sum[static_cast<size_t>(y * W + x)] += pk;
          ++count[static_cast<size_t>(y * W + x)];
        }
      }
    }
  }
  r.per_pixel.resize(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) r.per_pixel[i] = static_cast<float>(sum[i] / static_cast<double>(count[i]));
  return r;
}

std::vector<float> input_gradient(Executor& executor, const ViewImage& image, GradientMethod method, int64_t& target) {
  InspectMode inspect(executor);
  const Tensor& scores = executor.forward(image.input, false);
  check_finite_output(scores, [&](int64_t) { return image.name; });
  const int64_t classes = scores.numel();
  target = target >= 0 ? checked_target(target, classes) : argmax(scores.data(), classes);
  Tensor seed(scores.dims());
  seed.fill(0.0F);
  seed.data()[target] = 1;
  executor.context().relu_backward = method == GradientMethod::Saliency ? ReluBackward::Gradient
                                     : method == GradientMethod::Guided ? ReluBackward::Guided
                                                                        : ReluBackward::Deconvnet;
  executor.backward(seed);
  const Tensor& g = executor.input_gradient(0);
  if (first_non_finite({g.data(), static_cast<size_t>(g.numel())}) >= 0) {
    throw Error("the gradient of class " + std::to_string(target) + "'s score for " + image.name +
                " is not finite (NaN or Inf): the network's weights overflow f32");
  }
  return {g.data(), g.data() + g.numel()};
}

std::vector<Projection> deconv_projections(const Net& net, Executor& executor, const ViewImage& image,
                                           const std::string& layer, int64_t top) {
  const int id = find_node(net, layer);
  if (net.node(id).inputs.empty()) throw Error("'" + layer + "' is the network's input: pick a layer after it");
  if (top < 1) throw Error("--top must be at least 1");
  InspectMode inspect(executor);
  (void)executor.forward(image.input, false);
  const Tensor& a = *executor.activation(id);  // (1, C, H, W) or (1, F)
  const int64_t channels = a.dims().size() == 4 ? a.dim(1) : a.numel();
  const int64_t positions = a.numel() / channels;
  std::vector<int64_t> best(static_cast<size_t>(channels));  // index of each channel's maximum
  for (int64_t c = 0; c < channels; ++c)
    best[static_cast<size_t>(c)] = c * positions + argmax(a.data() + c * positions, positions);
  std::vector<int64_t> order(static_cast<size_t>(channels));
  std::iota(order.begin(), order.end(), 0);
  auto strength = [&](int64_t c) {  // NaN ranks last, keeping the ordering strict and weak
    const float v = a.data()[best[static_cast<size_t>(c)]];
    return std::isnan(v) ? -INFINITY : v;
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return strength(x) > strength(y); });
  executor.context().relu_backward = ReluBackward::Deconvnet;
  std::vector<Projection> out;
  Tensor seed(a.dims());
  for (int64_t k = 0; k < std::min(top, channels); ++k) {
    const int64_t c = order[static_cast<size_t>(k)];
    const int64_t i = best[static_cast<size_t>(c)];
    if (a.data()[i] <= 0) break;  // only activations that fired
    seed.fill(0.0F);
    seed.data()[i] = a.data()[i];
    executor.backward_from(id, seed);
    const Tensor& g = executor.input_gradient(0);
    const int64_t w = a.dims().size() == 4 ? a.dim(3) : 1;
    out.push_back({c, (i - c * positions) / w, (i - c * positions) % w, a.data()[i], {g.data(), g.data() + g.numel()}});
  }
  return out;
}

std::vector<float> pixel_strength(const std::vector<float>& gradient, int64_t channels, int64_t positions) {
  std::vector<float> s(static_cast<size_t>(positions), 0.0F);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t p = 0; p < positions; ++p) {
      s[static_cast<size_t>(p)] =
          std::max(s[static_cast<size_t>(p)], std::abs(gradient[static_cast<size_t>(c * positions + p)]));
    }
  }
  return s;
}

Canvas picture_of(const ViewImage& image, int64_t scale) {
  Canvas c(image.width * scale, image.height * scale);
  draw_planes(c, 0, 0, image.pixels, image.channels, image.height, image.width, scale);
  return c;
}

Canvas draw_heat_map(const ViewImage& image, const std::vector<float>& map01, const std::string& title,
                     const std::string& low_label, const std::string& high_label) {
  const int64_t H = image.height, W = image.width;
  const int64_t scale = scale_for(H, W, 224);
  const int64_t pw = W * scale, ph = H * scale;
  const int64_t width = std::max(3 * pw + 4 * 8, Canvas::text_width(title, kTextScale) + 8);
  Canvas c(width, kLine + ph + kLine + 8 + 12 + kLine, kPaper);
  c.draw_text(4, 4, title, kInk, kTextScale);
  const int64_t y0 = kLine;
  draw_planes(c, 8, y0, image.pixels, image.channels, H, W, scale);
  c.draw_map(16 + pw, y0, map01.data(), H, W, scale, Colormap::Viridis);
  const int64_t plane = H * W;
  for (int64_t i = 0; i < H; ++i) {  // the map over a grey copy of the image, half and half
    for (int64_t j = 0; j < W; ++j) {
      const size_t k = static_cast<size_t>(i * W + j);
      float grey = image.pixels[k];
      if (image.channels == 3) grey = (image.pixels[k] + image.pixels[plane + k] + image.pixels[2 * plane + k]) / 3;
      const Rgb m = color_of(map01[k], Colormap::Viridis);
      auto mix = [grey](uint8_t v) {
        return static_cast<uint8_t>(std::lround(0.5F * static_cast<float>(v) + 127.5F * grey));
      };
      c.fill_rect(24 + 2 * pw + j * scale, y0 + i * scale, scale, scale, {mix(m.r), mix(m.g), mix(m.b)});
    }
  }
  const int64_t y1 = y0 + ph + 4;
  c.draw_text(8, y1, "image", kInk, kTextScale);
  c.draw_text(16 + pw, y1, "map", kInk, kTextScale);
  c.draw_text(24 + 2 * pw, y1, "over the image", kInk, kTextScale);
  const int64_t bar_y = y1 + kLine;  // the colour scale, low to high
  for (int64_t x = 0; x < pw; ++x) {
    c.fill_rect(16 + pw + x, bar_y, 1, 12,
                color_of(static_cast<float>(x) / static_cast<float>(std::max<int64_t>(pw - 1, 1)), Colormap::Viridis));
  }
  c.draw_text(16 + pw, bar_y + 14, low_label, kInk, kTextScale);
  c.draw_text(16 + 2 * pw - Canvas::text_width(high_label, kTextScale), bar_y + 14, high_label, kInk, kTextScale);
  return c;
}

Canvas draw_projections(const ViewImage& image, const std::vector<Projection>& projections, const std::string& title) {
  const int64_t H = image.height, W = image.width;
  const int64_t scale = scale_for(H, W, 112);
  const int64_t pw = W * scale, ph = H * scale;
  const int64_t cell_w = pw + 8, cell_h = ph + 2 * kLine + 8;
  const auto panels = static_cast<int64_t>(projections.size()) + 1;
  const int64_t cols = std::min<int64_t>(panels, 10);  // rows of ten: --top 100 stays a picture
  const int64_t rows = (panels + cols - 1) / cols;
  const int64_t width = std::max(cols * cell_w + 8, Canvas::text_width(title, kTextScale) + 8);
  Canvas c(width, kLine + rows * cell_h, kPaper);
  c.draw_text(4, 4, title, kInk, kTextScale);
  for (int64_t k = 0; k < panels; ++k) {  // the image, then the projections
    const int64_t x = 8 + (k % cols) * cell_w, y = kLine + (k / cols) * cell_h;
    if (k == 0) {
      draw_planes(c, x, y, image.pixels, image.channels, H, W, scale);
      c.draw_text(x, y + ph + 4, "image", kInk, kTextScale);
      continue;
    }
    const Projection& p = projections[static_cast<size_t>(k - 1)];
    draw_planes(c, x, y, centred(p.pixels), image.channels, H, W, scale);
    c.draw_text(x, y + ph + 4, "ch " + std::to_string(p.channel), kInk, kTextScale);
    c.draw_text(x, y + ph + 4 + kLine, "(" + std::to_string(p.y) + "," + std::to_string(p.x) + ")", kInk, kTextScale);
  }
  return c;
}

}  // namespace convnet

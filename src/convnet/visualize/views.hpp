// What a trained network learned, as pictures: its filters, its activation maps for an image, and
// ZFNet's and Simonyan's analyses — occlusion (the class probability as a grey patch slides over
// the image), saliency (the class score's gradient with respect to the pixels; guided
// backpropagation as an option) and the deconvnet projection of a layer's strongest activations
// back to pixels. Everything runs the executor's own forward and backward (layer by layer, keeping
// every output).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convnet/data/dataset.hpp"
#include "convnet/data/loader.hpp"
#include "convnet/executor.hpp"
#include "convnet/net.hpp"
#include "convnet/visualize/canvas.hpp"

namespace convnet {

/// One image as the network sees it and as people see it.
struct ViewImage {
  Tensor input;               // (1, C, H, W), normalised as in training
  std::vector<float> pixels;  // (C, H, W) in [0, 1], for drawing
  int64_t channels = 0, height = 0, width = 0;
  std::string name;  // for messages: the file's name, or "image N of DATASET"
};

/// Image `index` of `data`, normalised with `norm` for the network.
[[nodiscard]] ViewImage view_image(const Dataset& data, int64_t index, const Normalization& norm);

/// The learned filters of `layer` (a node with a 4-D weight: out x in/groups x kH x kW): one RGB
/// tile per filter when it reads 3 channels, else one grey tile per (filter, input channel), each
/// scaled to its own range. Throws Error naming the layers that have filters when `layer` has none.
[[nodiscard]] Canvas draw_filters(const Net& net, Executor& executor, const std::string& layer);

struct ActivationView {
  int node = -1;
  std::string name;   // the node's name
  std::string shape;  // its output volume, "16x10x10"
  Canvas picture;
};

/// One grid of activation maps per node in `layers` (every node but the inputs when empty), handed
/// to `each` as it is drawn (a deep network's grids are never all held at once): each map scaled to
/// its own range (maps of one value: to the layer's range), at most kMaxMaps of them. Throws Error
/// on an unknown name.
inline constexpr int64_t kMaxMaps = 1024;
void draw_activations(const Net& net, Executor& executor, const ViewImage& image,
                      const std::vector<std::string>& layers, const std::function<void(const ActivationView&)>& each);

struct OcclusionOptions {
  int64_t target = -1;  // class; -1: the class predicted for the whole image
  int64_t patch = 0;    // side of the square; 0: max(2, H / 7)
  int64_t stride = 0;   // 0: max(1, patch / 2)
  int64_t batch = 64;
};

struct OcclusionMap {
  int64_t target = 0;
  float unoccluded = 0;  // p(target) for the whole image
  int64_t patch = 0, stride = 0;
  std::vector<float> per_pixel;  // (H, W): mean p(target) over the patch
                                 // positions covering the pixel
  float lowest = 0;              // the smallest p(target) over patch positions
};

/// ZFNet's occlusion experiment: the image with a patch of the training mean (0 after
/// normalisation; black for a model trained without normalisation) at each position, p(target) for
/// each. Throws Error on a bad class or patch, a stride above the patch (pixels never covered), or
/// outputs that are not finite (check_finite_output).
[[nodiscard]] OcclusionMap occlusion(Executor& executor, const ViewImage& image, const OcclusionOptions& options);

enum class GradientMethod {
  Saliency,  // d score / d pixels (Simonyan et al. 2014)
  Guided,    // guided backpropagation (Springenberg et al. 2015): ReLUs also drop
             // negative gradients
  Deconvnet  // ZFNet: ReLUs pass relu(signal) backward, max pooling unpools with
             // its switches
};

/// d(score of `target`, a node's output before any softmax) / d(input) for one image, (C, H, W),
/// with ReLU's backward chosen by `method`. target < 0: the predicted class. Sets `target` to the
/// class used. Throws Error when the scores or the gradient are not finite (NaN or Inf).
[[nodiscard]] std::vector<float> input_gradient(Executor& executor, const ViewImage& image, GradientMethod method,
                                                int64_t& target);

struct Projection {
  int64_t channel = 0, y = 0, x = 0;  // the activation projected
  float value = 0;
  std::vector<float> pixels;  // (C, H, W): its deconvnet projection onto the input
};

/// ZFNet's deconvnet view: the strongest activation of each of the `top` channels of `layer` with
/// the largest maxima, each alone projected back to pixel space. Throws Error on an unknown layer.
[[nodiscard]] std::vector<Projection> deconv_projections(const Net& net, Executor& executor, const ViewImage& image,
                                                         const std::string& layer, int64_t top);

/// max over channels of |g|, (H, W): how strongly each pixel moves the score.
[[nodiscard]] std::vector<float> pixel_strength(const std::vector<float>& gradient, int64_t channels,
                                                int64_t positions);

/// The image alone, each pixel a `scale` x `scale` block (colour for 3 channels, else grey).
[[nodiscard]] Canvas picture_of(const ViewImage& image, int64_t scale);

/// The image, a (H, W) map in [0, 1] beside it, and the map over the image; `title` above.
[[nodiscard]] Canvas draw_heat_map(const ViewImage& image, const std::vector<float>& map01, const std::string& title,
                                   const std::string& low_label, const std::string& high_label);

/// The image and its projections in a row, each labelled.
[[nodiscard]] Canvas draw_projections(const ViewImage& image, const std::vector<Projection>& projections,
                                      const std::string& title);

}  // namespace convnet

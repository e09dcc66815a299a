// Graph construction with shape inference at every step; errors name the layer and its line.
#include "convnet/net.hpp"

#include <algorithm>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/layers/input.hpp"

namespace convnet {

bool Node::learnable() const {
  return std::any_of(params.begin(), params.end(), [](const ParamSpec& p) { return !p.is_buffer; });
}
namespace {

std::string located(const SourceLocation& where, const std::string& name, const std::string& kind) {
  std::string prefix = where.file.empty() && where.line == 0 ? std::string() : where.str() + ": ";
  return prefix + name + " (" + kind + "): ";
}

// Receptive fields meeting at an add or concat: the widest view wins.
ReceptiveField combine(const std::vector<ReceptiveField>& fields) {
  ReceptiveField out = fields.front();
  for (const ReceptiveField& f : fields) {
    out.size_h = std::max(out.size_h, f.size_h);
    out.size_w = std::max(out.size_w, f.size_w);
    out.jump_h = std::max(out.jump_h, f.jump_h);
    out.jump_w = std::max(out.jump_w, f.jump_w);
    out.global = out.global || f.global;
  }
  return out;
}

}  // namespace

int Net::find(const std::string& name) const {
  const auto it = ids_.find(name);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<Shape> Net::input_shapes(const Node& node) const {
  std::vector<Shape> shapes;
  for (int id : node.inputs) shapes.push_back(nodes_[static_cast<size_t>(id)].output);
  return shapes;
}

NetBuilder::NetBuilder(std::string name) { net_.name_ = std::move(name); }

int NetBuilder::input(const std::string& name, Shape shape, SourceLocation where) {
  for (int64_t d : shape.dims()) {
    if (d < 1) throw ShapeError(located(where, name, "input") + "every dimension must be at least 1, got " + shape.chw_string());
  }
  if (shape.rank() != 1 && shape.rank() != 3) {
    throw ShapeError(located(where, name, "input") + "expected CxHxW or a vector size, got " + shape.chw_string());
  }
  const int id = add(name, std::make_unique<Input>(shape), {}, where);
  net_.inputs_.push_back(id);
  return id;
}

int NetBuilder::add(const std::string& name, std::unique_ptr<Layer> layer, std::vector<int> inputs,
                    SourceLocation where) {
  const std::string kind = layer->kind();
  if (net_.find(name) >= 0) {
    throw SpecError(located(where, name, kind) + "the name is already used by another layer");
  }
  if (inputs.empty() && layer->min_inputs() > 0) {
    if (net_.nodes_.empty()) throw SpecError(located(where, name, kind) + "no input to read: declare one with 'input CxHxW'");
    inputs.push_back(last());
  }
  const int count = static_cast<int>(inputs.size());
  if (count < layer->min_inputs() || count > layer->max_inputs()) {
    throw SpecError(located(where, name, kind) + "takes " + std::to_string(layer->min_inputs()) +
                    (layer->max_inputs() > layer->min_inputs() ? " or more" : "") + " input(s), got " +
                    std::to_string(count));
  }
  Node node;
  node.name = name;
  node.inputs = std::move(inputs);
  node.where = where;
  std::vector<ReceptiveField> fields;
  for (int id : node.inputs) fields.push_back(net_.nodes_.at(static_cast<size_t>(id)).receptive_field);
  const std::vector<Shape> in_shapes = net_.input_shapes(node);
  try {
    node.output = layer->output_shape(in_shapes);
    check_float_bytes(node.output.dims(), "the output " + node.output.chw_string());
    node.params = layer->parameters(in_shapes);
    int64_t params = 0;
    for (const ParamSpec& p : node.params) {
      check_float_bytes(p.dims, "parameter '" + p.name + "'");
      params += p.numel();  // each below 2^46: no overflow
    }
    (void)layer->macs(in_shapes, node.output);  // checked by the layer: a count past int64 throws here
    node.receptive_field = fields.empty() ? ReceptiveField{} : layer->receptive_field(combine(fields));
    // As the summary counts them: an in-place layer stores no new activations.
    const int64_t stored = layer->in_place() ? 0 : node.output.numel();
    const int64_t activations = checked_add(activation_values_, stored, "activation count");
    check_float_bytes({activations}, "the network's activations up to this layer");
    const int64_t parameters = checked_add(parameter_values_, params, "parameter count");
    check_float_bytes({parameters}, "the network's parameters up to this layer");
    activation_values_ = activations;
    parameter_values_ = parameters;
  } catch (const ShapeError& e) {
    throw ShapeError(located(where, name, kind) + e.what());
  } catch (const SizeError& e) {
    throw SizeError(located(where, name, kind) + e.what());
  }
  node.layer = std::move(layer);
  net_.ids_.emplace(name, static_cast<int>(net_.nodes_.size()));
  net_.nodes_.push_back(std::move(node));
  return last();
}

const Shape& NetBuilder::shape(int id) const { return net_.nodes_.at(static_cast<size_t>(id)).output; }

Net NetBuilder::build() && {
  if (net_.inputs_.empty()) throw SpecError("network '" + net_.name_ + "' has no input");
  if (net_.nodes_.size() == net_.inputs_.size()) throw SpecError("network '" + net_.name_ + "' has no layers");
  net_.output_ = last();
  return std::move(net_);
}

}  // namespace convnet

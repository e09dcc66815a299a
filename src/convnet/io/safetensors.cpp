// safetensors reading and atomic writing, and loading parameters by name. Reading checks every
// declared size against the file before allocating: header length, each tensor's dtype, shape
// (checked arithmetic), offsets inside the data and not overlapping.
#include "convnet/io/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "convnet/checked.hpp"
#include "convnet/error.hpp"
#include "convnet/finite.hpp"
#include "convnet/io/atomic_file.hpp"
#include "convnet/io/input_file.hpp"

namespace convnet {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit is 100 MB of JSON

// Bytes per element of the dtypes read; 0 for any other dtype.
int64_t dtype_size(const std::string& dtype) {
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "F32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  return 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

float bits_to_float(uint32_t bits) {
  float f = 0.0f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// IEEE 754 half precision to single, exactly (every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  const float subnormal = std::ldexp(static_cast<float>(mantissa), -24);  // 0 included
  return sign ? -subnormal : subnormal;
}

template <class T>
T load(const uint8_t* p) {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Converts `count` little-endian elements of `dtype` (not F32, which is read in place) to float32.
void to_float(const std::string& dtype, const uint8_t* p, int64_t count, float* out) {
  const auto convert = [&](size_t size, auto element) {
    for (int64_t i = 0; i < count; ++i) out[i] = element(p + static_cast<size_t>(i) * size);
  };
  if (dtype == "F16") convert(2, [](const uint8_t* q) { return half_to_float(load<uint16_t>(q)); });
  if (dtype == "BF16") convert(2, [](const uint8_t* q) { return bits_to_float(uint32_t{load<uint16_t>(q)} << 16); });
  if (dtype == "F64") convert(8, [](const uint8_t* q) { return static_cast<float>(load<double>(q)); });
  if (dtype == "I64") convert(8, [](const uint8_t* q) { return static_cast<float>(load<int64_t>(q)); });
}

// A tensor's header entry, checked: dtype known, shape of non-negative integers whose byte size
// (checked arithmetic) is exactly what its offsets span, inside the data.
struct Entry {
  std::string name;
  StoredTensor tensor;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j, uint64_t data_size) {
  const std::string where = path + ": tensor '" + name + "'";
  if (!j.is_object()) throw IoError(where + ": its header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) throw IoError(where + ": its header entry has no \"" + key + "\"");
  }
  Entry e;
  e.name = name;
  if (!j.at("dtype").is_string()) throw IoError(where + ": \"dtype\" is not a string");
  e.tensor.dtype = j.at("dtype").get<std::string>();
  const int64_t element_size = dtype_size(e.tensor.dtype);
  if (element_size == 0) {
    throw IoError(where + " has unsupported dtype " + e.tensor.dtype + " (F32, F16, BF16, F64 and I64 are read)");
  }
  const nlohmann::json& shape = j.at("shape");
  if (!shape.is_array()) throw IoError(where + ": \"shape\" is not an array");
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > INT64_MAX) || d.get<int64_t>() < 0) {
      throw IoError(where + ": shape " + shape.dump() + " holds " + d.dump() + ", not a dimension (an integer >= 0)");
    }
    e.tensor.shape.push_back(d.get<int64_t>());
  }
  const nlohmann::json& offsets = j.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
    throw IoError(where + ": \"data_offsets\" is " + offsets.dump() + ", not [begin, end] byte offsets");
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  int64_t bytes = 0;
  try {
    bytes = checked_mul(checked_product(e.tensor.shape, "element count"), element_size, "byte size");
  } catch (const SizeError& error) {
    throw IoError(where + " of shape " + shape_string(e.tensor.shape) + ": " + error.what());
  }
  if (e.begin > e.end || e.end > data_size) {
    throw IoError(where + ": data offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] are outside the " + std::to_string(data_size) + " bytes of data (truncated file?)");
  }
  if (e.end - e.begin != static_cast<uint64_t>(bytes)) {
    throw IoError(where + ": shape " + shape_string(e.tensor.shape) + " of " + e.tensor.dtype + " needs " +
                  std::to_string(bytes) + " bytes but its data offsets span " + std::to_string(e.end - e.begin));
  }
  return e;
}

}  // namespace

void check_json_nesting(const std::string& text, int max_depth, const std::string& what) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        throw IoError(what + " is nested more than " + std::to_string(max_depth) + " levels deep (at byte " +
                      std::to_string(i) + ")");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

SafetensorsContent read_safetensors(const std::string& path) {
  const InputFile file(path);
  if (file.size() < 8) throw IoError(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint8_t length[8];
  file.read_at(0, length, 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length[i];
  if (header_size > file.size() - 8) {
    throw IoError(path + ": not a safetensors file or truncated: header length " + std::to_string(header_size) +
                  " is larger than the " + std::to_string(file.size() - 8) + " bytes after it");
  }
  if (header_size > kMaxHeader) {
    throw IoError(path + ": safetensors header length " + std::to_string(header_size) + " is beyond the format's limit of " +
                  std::to_string(kMaxHeader) + " bytes");
  }
  std::string text(static_cast<size_t>(header_size), '\0');
  file.read_at(8, text.data(), text.size());
  // An object of objects holding arrays: 3 levels. Deeper JSON would only cost memory to parse.
  check_json_nesting(text, 3, path + ": corrupted safetensors header: it");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": corrupted safetensors header: " + e.what());
  }
  if (!header.is_object()) throw IoError(path + ": corrupted safetensors header: not a JSON object");
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file.size() - data_start;
  SafetensorsContent content;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() != "__metadata__") {
      entries.push_back(parse_entry(path, it.key(), *it, data_size));
      continue;
    }
    if (!it->is_object()) throw IoError(path + ": corrupted safetensors header: \"__metadata__\" is not an object");
    for (auto m = it->begin(); m != it->end(); ++m) {
      if (!m->is_string()) throw IoError(path + ": corrupted safetensors header: metadata \"" + m.key() + "\" is not a string");
      content.metadata[m.key()] = m->get<std::string>();
    }
  }
  // No two tensors may share bytes.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& a = *by_offset[i - 1];
    const Entry& b = *by_offset[i];
    if (b.begin < a.end) {
      throw IoError(path + ": tensors '" + a.name + "' [" + std::to_string(a.begin) + ", " + std::to_string(a.end) +
                    "] and '" + b.name + "' [" + std::to_string(b.begin) + ", " + std::to_string(b.end) +
                    "] overlap in the data");
    }
  }
  // Every size is now known to fit in the file, so nothing below allocates more than the file holds
  // (twice that for 16-bit dtypes, converted to float32).
  std::vector<uint8_t> raw;
  for (Entry& e : entries) {
    const auto count = static_cast<size_t>(checked_product(e.tensor.shape));
    e.tensor.values.resize(count);
    if (e.tensor.dtype == "F32") {
      file.read_at(data_start + e.begin, e.tensor.values.data(), count * 4);  // x86-64 is little-endian
    } else {
      raw.resize(static_cast<size_t>(e.end - e.begin));
      file.read_at(data_start + e.begin, raw.data(), raw.size());
      to_float(e.tensor.dtype, raw.data(), static_cast<int64_t>(count), e.tensor.values.data());
    }
    content.tensors.emplace(e.name, std::move(e.tensor));
  }
  return content;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t size = static_cast<uint64_t>(tensor->numel()) * 4;
    header[name] = {{"dtype", "F32"}, {"shape", tensor->dims()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';  // keep the data 8-byte aligned
  AtomicFile file(path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xff);
  file.write(length, 8);
  file.write(text.data(), text.size());
  for (const auto& [name, tensor] : tensors) {
    file.write(tensor->data(), static_cast<size_t>(tensor->numel()) * 4);  // x86-64 is little-endian
  }
  file.commit();
}

std::vector<std::pair<std::string, const Tensor*>> parameter_tensors(Executor& executor) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const NamedParameter& p : executor.named_parameters()) tensors.emplace_back(p.name, p.value);
  return tensors;
}

void save_weights(Executor& executor, const std::string& path) {
  write_safetensors(path, parameter_tensors(executor), {{"format", "pt"}, {"network", executor.net().name()}});
}

void require_finite(std::span<const float> values, const std::string& name, const std::string& source) {
  if (const int64_t i = first_non_finite(values); i >= 0) {
    throw IoError(source + ": tensor '" + name + "' holds " + std::to_string(values[static_cast<size_t>(i)]) +
                  " at index " + std::to_string(i) +
                  ", not a finite number (a corrupted file, or a training that diverged)");
  }
}

void load_parameters(const SafetensorsContent& content, Executor& executor, const std::string& source,
                     const std::string& other_prefix) {
  std::vector<std::string> problems;
  std::vector<NamedParameter> params = executor.named_parameters();
  for (const NamedParameter& p : params) {
    auto it = content.tensors.find(p.name);
    if (it == content.tensors.end()) {
      // Converted torchvision weights often lack this counter; PyTorch starts it at 0 then.
      if (p.spec->name == "num_batches_tracked") continue;
      problems.push_back("missing '" + p.name + "' " + shape_string(p.value->dims()));
      continue;
    }
    const std::string& dtype = it->second.dtype;
    const bool floating = dtype == "F32" || dtype == "F16" || dtype == "BF16" || dtype == "F64";
    if (!floating && !(p.spec->is_buffer && dtype == "I64")) {
      problems.push_back("'" + p.name + "' is " + dtype + ", expected a floating-point dtype (F32, F16, BF16, F64)");
    }
    if (it->second.shape != p.value->dims()) {
      problems.push_back("'" + p.name + "' has shape " + shape_string(it->second.shape) + ", expected " +
                         shape_string(p.value->dims()));
    }
  }
  for (const auto& [name, tensor] : content.tensors) {
    if (!other_prefix.empty() && name.rfind(other_prefix, 0) == 0) continue;
    const bool known = std::any_of(params.begin(), params.end(), [&](const NamedParameter& p) { return p.name == name; });
    if (!known) problems.push_back("unexpected '" + name + "' " + shape_string(tensor.shape));
  }
  if (!problems.empty()) {
    std::string message = source + ": does not fit network '" + executor.net().name() + "' (" +
                          std::to_string(problems.size()) + " problem(s)): ";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw IoError(message);
  }
  for (const NamedParameter& p : params) {  // a NaN or infinity would make every output NaN
    auto it = content.tensors.find(p.name);
    if (it == content.tensors.end()) continue;
    require_finite(it->second.values, p.name, source);
  }
  for (const NamedParameter& p : params) {
    auto it = content.tensors.find(p.name);
    if (it == content.tensors.end()) std::fill(p.value->data(), p.value->data() + p.value->numel(), 0.0f);
    else std::copy(it->second.values.begin(), it->second.values.end(), p.value->data());
  }
}

void load_weights(Executor& executor, const std::string& path) {
  load_parameters(read_safetensors(path), executor, path, kOptimizerPrefix);
}

}  // namespace convnet

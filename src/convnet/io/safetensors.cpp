// safetensors reading and atomic writing.
#include "convnet/io/safetensors.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convnet/error.hpp"
#include "convnet/io/atomic_file.hpp"

namespace convnet {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit is 100 MB of JSON

int64_t dtype_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  return 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

SafetensorsContent read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open the file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) throw IoError(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (header_size > kMaxHeader || 8 + header_size > bytes.size()) {
    throw IoError(path + ": not a safetensors file or truncated (header length " + std::to_string(header_size) +
                  ", file size " + std::to_string(bytes.size()) + ")");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, header_size));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": corrupted safetensors header: " + e.what());
  }
  if (!header.is_object()) throw IoError(path + ": corrupted safetensors header: not a JSON object");
  const size_t data_start = 8 + header_size;
  const uint64_t data_size = bytes.size() - data_start;
  SafetensorsContent content;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_object()) {
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (m->is_string()) content.metadata[m.key()] = m->get<std::string>();
        }
      }
      continue;
    }
    try {
      StoredTensor t;
      t.dtype = it->at("dtype").get<std::string>();
      t.shape = it->at("shape").get<std::vector<int64_t>>();
      const auto offsets = it->at("data_offsets").get<std::vector<uint64_t>>();
      const int64_t size = dtype_size(t.dtype);
      if (size == 0) throw IoError(path + ": tensor '" + it.key() + "' has unsupported dtype " + t.dtype + " (F32, F64, I64 are read)");
      int64_t count = 1;
      for (int64_t d : t.shape) {
        if (d < 0) throw IoError(path + ": tensor '" + it.key() + "' has a negative dimension");
        count *= d;
      }
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size ||
          offsets[1] - offsets[0] != static_cast<uint64_t>(count * size)) {
        throw IoError(path + ": tensor '" + it.key() + "' has data offsets outside the file or of the wrong size (truncated?)");
      }
      const char* p = bytes.data() + data_start + offsets[0];
      t.values.resize(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        if (t.dtype == "F32") {
          float v;
          std::memcpy(&v, p + i * 4, 4);
          t.values[static_cast<size_t>(i)] = v;
        } else if (t.dtype == "F64") {
          double v;
          std::memcpy(&v, p + i * 8, 8);
          t.values[static_cast<size_t>(i)] = static_cast<float>(v);
        } else {
          int64_t v;
          std::memcpy(&v, p + i * 8, 8);
          t.values[static_cast<size_t>(i)] = static_cast<float>(v);
        }
      }
      content.tensors.emplace(it.key(), std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw IoError(path + ": corrupted entry for tensor '" + it.key() + "': " + e.what());
    }
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

void load_parameters(const SafetensorsContent& content, Executor& executor, const std::string& source,
                     const std::string& other_prefix) {
  std::vector<std::string> problems;
  std::vector<NamedParameter> params = executor.named_parameters();
  for (const NamedParameter& p : params) {
    auto it = content.tensors.find(p.name);
    if (it == content.tensors.end()) {
      problems.push_back("missing '" + p.name + "' " + shape_string(p.value->dims()));
      continue;
    }
    const bool integer_ok = p.spec->is_buffer && it->second.dtype == "I64";
    if (it->second.dtype != "F32" && !integer_ok) {
      problems.push_back("'" + p.name + "' is " + it->second.dtype + ", expected F32");
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
  for (const NamedParameter& p : params) {
    const StoredTensor& t = content.tensors.at(p.name);
    std::copy(t.values.begin(), t.values.end(), p.value->data());
  }
}

void load_weights(Executor& executor, const std::string& path) {
  load_parameters(read_safetensors(path), executor, path);
}

}  // namespace convnet

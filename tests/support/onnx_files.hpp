// Reading and writing ONNX ModelProto files in the ONNX tests (to inspect or edit an exported file).
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli.hpp"
#include "convnet/error.hpp"
#include "convnet/interop/onnx.hpp"

namespace convnet::testing {

inline onnx::ModelProto read_model(const std::filesystem::path& path) {
  onnx::ModelProto model;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

inline void write_model(const onnx::ModelProto& model, const std::filesystem::path& path) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(model.SerializeToOstream(&out)) << path;
}

/// Imports `model` once per node with its inputs cut to each shorter count, and once with its
/// outputs removed: each variant imports or is refused with one error naming the file, never a
/// crash (protobuf's accessors abort on a missing index); a node without outputs is refused as
/// such. Returns how many variants were refused.
inline int sweep_nodes_missing_inputs_or_outputs(const onnx::ModelProto& model) {
  int refused = 0;
  for (int k = 0; k < model.graph().node_size(); ++k) {
    const onnx::NodeProto& node = model.graph().node(k);
    for (int keep = -1; keep < node.input_size(); ++keep) {  // -1: every input kept, no output
      SCOPED_TRACE(node.op_type() + " " + std::to_string(keep));
      onnx::ModelProto edited = model;
      onnx::NodeProto* n = edited.mutable_graph()->mutable_node(k);
      if (keep < 0) {
        n->clear_output();
      } else {
        while (n->input_size() > keep) n->mutable_input()->RemoveLast();
      }
      const TempFile file(".onnx");
      write_model(edited, file.path());
      std::string error;
      try {
        (void)onnx_interop::import_onnx_file(file.path().string());
      } catch (const Error& e) {
        error = e.what();
      }
      if (keep < 0) {
        EXPECT_NE(error.find(" has no output"), std::string::npos) << error;
      }
      if (!error.empty()) {
        EXPECT_EQ(error.rfind(file.path().string() + ": ", 0), 0u) << error;
        EXPECT_EQ(error.find('\n'), std::string::npos) << error;
        ++refused;
      }
    }
  }
  return refused;
}

}  // namespace convnet::testing

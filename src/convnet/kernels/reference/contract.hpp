// Always-on preconditions of the reference kernels that guard memory: a group count that does not
// divide the channels, a zero stride or tile, or a pooling window off the input would read or write
// past a buffer (or divide by zero). Checked once at a kernel's entry, never in its loops, in every
// build type; a violation throws convnet::Error naming the kernel. The layers validate all of this
// before calling, so a failure here is a bug in the caller, reported instead of corrupting memory.
#pragma once

#include <string>

#include "convnet/error.hpp"
#include "convnet/kernels/reference/conv_geometry.hpp"

namespace convnet::kernels::reference {

inline void require(bool condition, const char* kernel, const char* precondition) {
  if (!condition) throw Error(std::string(kernel) + ": precondition violated: " + precondition);
}

/// What every sliding-window kernel on a Conv2dGeometry relies on.
inline void require_window(const Conv2dGeometry& g, const char* kernel) {
  require(g.groups >= 1 && g.in_channels % g.groups == 0 && g.out_channels % g.groups == 0, kernel,
          "groups >= 1 dividing the input and output channels");
  require(g.stride_h >= 1 && g.stride_w >= 1 && g.dilation_h >= 1 && g.dilation_w >= 1, kernel,
          "strides and dilations >= 1");
}

}  // namespace convnet::kernels::reference

// $-substitution for block parameters: "$width" and "$(4*growth)" in a block body.
#pragma once

#include <map>
#include <string>

#include "convnet/layer_args.hpp"

namespace convnet::model {

/// Block parameter values by name, as written ("64", "0.2", "false").
using Environment = std::map<std::string, std::string>;

/// Replaces a "$name" or "$(expression)" word by its value; other words are returned unchanged.
/// Throws SpecError at `where` for an unknown name or a malformed expression.
[[nodiscard]] std::string substitute(const std::string& word, const Environment& env, const SourceLocation& where);

}  // namespace convnet::model

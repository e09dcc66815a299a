// Nullable<T>* marks an optional pointer argument of a kernel template: `nullptr` means "not wanted",
// and because T is not deduced from it, a bare `nullptr` can be passed.
#pragma once

#include <type_traits>

namespace convnet::kernels::reference {

template <class T>
using Nullable = std::type_identity_t<T>;

}  // namespace convnet::kernels::reference

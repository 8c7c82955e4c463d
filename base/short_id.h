#pragma once

#include <string>
#include <string_view>

namespace base {

// crictl's short form of a container or sandbox ID: its first 13 characters.
inline std::string shortId(std::string_view id) { return std::string(id.substr(0, 13)); }

}  // namespace base

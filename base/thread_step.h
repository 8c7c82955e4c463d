#pragma once

#include <glog/logging.h>

#include <exception>
#include <string_view>

namespace base {

// Runs one turn of a background thread's loop. An exception (a bug, memory running out, a
// handler that throws) is logged and reported as false, so that the thread goes on (the caller
// decides how: the informer relists) instead of std::terminate ending the whole agent.
template <typename Step>
bool runThreadStep(std::string_view thread, Step&& step) noexcept {
  try {
    step();
    return true;
  } catch (const std::exception& e) {
    LOG(ERROR) << thread << ": unexpected exception: " << e.what();
  } catch (...) {
    LOG(ERROR) << thread << ": unexpected exception of an unknown type";
  }
  return false;
}

}  // namespace base

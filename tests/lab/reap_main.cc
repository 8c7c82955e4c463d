#include <glog/logging.h>

#include "tests/lab/containerd_lab.h"

// Nothing to do is a success; a dead lab whose leftovers stay is a failure.
int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::vector<std::string> left = lab::reapDeadLabs();
  for (const auto& dir : left) LOG(ERROR) << "a dead lab's leftovers remain in " << dir;
  return left.empty() ? 0 : 1;
}

#include <gflags/gflags.h>
#include <glog/logging.h>

int main(int argc, char** argv) {
  gflags::SetUsageMessage("capture-controller: packet captures of Pods, on demand, by annotation");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  LOG(ERROR) << "not implemented yet";
  return 1;
}

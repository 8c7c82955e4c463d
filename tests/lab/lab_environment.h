#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "tests/lab/containerd_lab.h"

namespace lab {

// One containerd lab for a whole test binary: register it in main() with
// ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment), and begin each test with
//   E2E_REQUIRE_ROOT();
//   E2E_REQUIRE(lab::LabEnvironment::lab() != nullptr, lab::LabEnvironment::why());
// Its TearDown runs even when tests fail; a crash is handled by the next lab's start().
class LabEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (::geteuid() != 0) {
      why_ = "the containerd lab needs root";
      return;
    }
    auto started = ContainerdLab::start();
    if (started.ok()) {
      lab_ = std::move(*started);
    } else {
      why_ = "the containerd lab did not start: " + started.status().ToString();
    }
  }
  void TearDown() override { lab_.reset(); }

  static ContainerdLab* lab() { return lab_.get(); }
  static const std::string& why() { return why_; }

 private:
  static inline std::unique_ptr<ContainerdLab> lab_;
  static inline std::string why_;
};

}  // namespace lab

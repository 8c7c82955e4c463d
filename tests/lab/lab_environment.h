#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>

#include "tests/lab/containerd_lab.h"
#include "tests/support/e2e_guard.h"

namespace lab {

// One containerd lab for a whole test binary: register it in main() with
// ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment), and begin each test (or SetUp)
// with E2E_REQUIRE_LAB().
// Its TearDown runs even when tests fail; a crash is handled by the next lab's start().
// The containerd is the one LabOptions::fromEnvironment() names (the machine's by default); its
// version goes to stdout and, as the property containerd_version, into the XML report.
class LabEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto started = ContainerdLab::start();
    if (started.ok()) {
      lab_ = std::move(*started);
      std::cout << "[ lab      ] containerd " << lab_->containerdVersion() << " ("
                << lab_->containerdBinary() << ")" << std::endl;
      ::testing::Test::RecordProperty("containerd_version", lab_->containerdVersion());
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

// Skips (or, where end-to-end tests are required, fails) a test when there is no lab.
#define E2E_REQUIRE_LAB() \
  E2E_REQUIRE_ROOT();     \
  E2E_REQUIRE(::lab::LabEnvironment::lab() != nullptr, ::lab::LabEnvironment::why())

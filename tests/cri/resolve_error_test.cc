#include <gtest/gtest.h>

#include "cri/sandbox_resolver.h"

namespace cri {
namespace {

TEST(ResolveError, EveryFailureRoundTripsWithItsMessage) {
  for (int i = static_cast<int>(ResolveFailure::kNone) + 1;
       i < static_cast<int>(ResolveFailure::kOther); ++i) {
    const auto failure = static_cast<ResolveFailure>(i);
    const absl::Status status = resolveError(failure, "what happened");
    EXPECT_FALSE(status.ok()) << toString(failure);
    EXPECT_EQ(failureOf(status), failure) << toString(failure);
    EXPECT_EQ(status.message(), "what happened");
  }
}

TEST(ResolveError, CodesTellTransientFromFinal) {
  EXPECT_EQ(resolveError(ResolveFailure::kRuntimeUnavailable, "x").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(resolveError(ResolveFailure::kNoSandbox, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(resolveError(ResolveFailure::kNoReadySandbox, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(resolveError(ResolveFailure::kHostNetwork, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(resolveError(ResolveFailure::kMalformedStatus, "x").code(),
            absl::StatusCode::kDataLoss);
}

TEST(ResolveError, NoneIsOk) {
  EXPECT_TRUE(resolveError(ResolveFailure::kNone, "ignored").ok());
  EXPECT_EQ(failureOf(absl::OkStatus()), ResolveFailure::kNone);
}

TEST(ResolveError, AStatusWithoutAFailureIsOther) {
  EXPECT_EQ(failureOf(absl::NotFoundError("plain")), ResolveFailure::kOther);
  EXPECT_EQ(failureOf(absl::UnavailableError("plain")), ResolveFailure::kOther);
}

}  // namespace
}  // namespace cri

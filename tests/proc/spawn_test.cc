#include "proc/spawn.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace proc {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

SpawnSpec shell(const std::string& script) { return SpawnSpec{{"/bin/sh", "-c", script}, {}}; }

TEST(RunToCompletion, ReportsTheExitStatusAndTheLastStderrLines) {
  auto done = runToCompletion(
      shell("for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; echo out; exit 3"), 10s);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status, (ExitStatus{3, 0}));
  EXPECT_EQ(done->status.describe(), "exited with status 3");
  EXPECT_EQ(done->stderr_tail, "line3\nline4\nline5\nline6\nline7");
}

TEST(RunToCompletion, ReportsAKillingSignal) {
  auto done = runToCompletion(shell("kill -KILL $$"), 10s);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status.signal, SIGKILL);
  EXPECT_THAT(done->status.describe(), HasSubstr("killed by signal 9"));
}

TEST(SpawnChild, AFailedExecIsAnErrorNotAMysteriousExit) {
  auto child = spawnChild(SpawnSpec{{"/nonexistent/tcpdump", "--version"}, {}});
  ASSERT_FALSE(child.ok());
  EXPECT_THAT(child.status().message(), HasSubstr("execve"));
  EXPECT_THAT(child.status().message(), HasSubstr("No such file"));
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "the failed child was not reaped";
  EXPECT_EQ(errno, ECHILD);
}

TEST(SpawnChild, NeedsAnAbsolutePathAndNoShell) {
  EXPECT_FALSE(spawnChild(SpawnSpec{{"tcpdump"}, {}}).ok());
  EXPECT_FALSE(spawnChild(SpawnSpec{{}, {}}).ok());
}

TEST(SpawnChild, PassesArgumentsVerbatimAndOnlyTheGivenEnvironment) {
  auto done = runToCompletion(
      SpawnSpec{{"/bin/sh", "-c", "echo \"[$1] [$2] [$HOME] [$ONLY]\" >&2", "sh", "a b", "$x;*"},
                {"ONLY=this"}},
      10s);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->stderr_tail, "[a b] [$x;*] [] [this]");
}

TEST(SpawnChild, ClosesInheritedDescriptorsAndReadsStdinFromDevNull) {
  const int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 3);
  auto done = runToCompletion(
      shell(absl::StrCat("if [ -e /proc/$$/fd/", leaky,
                         " ]; then echo leaked >&2; fi; read line; echo \"stdin[$line]\" >&2")),
      10s);
  ::close(leaky);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->stderr_tail, "stdin[]");
}

TEST(SpawnChild, ResetsTheSignalMaskAndIgnoredSignals) {
  // A parent that blocks SIGTERM (to sigwait for it) or ignores it must not pass that on:
  // tcpdump would then never hear stop()'s SIGTERM.
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old_mask), 0);
  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &old_action), 0);
  auto done = runToCompletion(shell("kill -TERM $$; echo survived >&2"), 10s);
  ::sigaction(SIGTERM, &old_action, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status.signal, SIGTERM) << done->stderr_tail;
}

TEST(RunToCompletion, KillsAndReapsAChildThatOverrunsItsTimeout) {
  auto done = runToCompletion(SpawnSpec{{"/bin/sleep", "30"}, {}}, 100ms);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(LineTail, KeepsTheLastLinesBoundedInLength) {
  LineTail tail(/*max_lines=*/2, /*max_line_length=*/5);
  tail.append("one\ntwo\nthree-is-long\nfou");
  EXPECT_EQ(tail.text(), "two\nthree\nfou");
  tail.append("r\n");
  EXPECT_EQ(tail.text(), "three\nfour");
}

TEST(LineTail, KeepsOnlyPrintableTextSoThatItIsValidUtf8) {
  // A Pod with NET_ADMIN can name an interface with any bytes, and tcpdump repeats the name.
  LineTail tail;
  tail.append("tcpdump: \xff\xfe: No such device exists\n\ttab\r\x01\n");
  EXPECT_EQ(tail.text(), "tcpdump: \\xff\\xfe: No such device exists\n\\x09tab\\x0d\\x01");
  EXPECT_NO_THROW(nlohmann::json(tail.text()).dump());
  EXPECT_THROW(nlohmann::json("\xff").dump(), nlohmann::json::type_error) << "the raw bytes would";
}

TEST(LineTail, ACutInsideAMultiByteCharacterLeavesNoBrokenCharacter) {
  // "é" is two bytes (c3 a9); a 6-character limit cuts the second escape off, whole.
  LineTail tail(/*max_lines=*/5, /*max_line_length=*/6);
  tail.append(
      "ab\xc3\xa9"
      "cd\n");
  EXPECT_EQ(tail.text(), "ab\\xc3");
  const std::string json = nlohmann::json(tail.text()).dump();
  EXPECT_EQ(json, "\"ab\\\\xc3\"");
  // Once a line is cut, nothing more of it is kept, even what would still fit.
  tail.append("12345\xff");
  tail.append("x\nnext\n");
  EXPECT_EQ(tail.text(), "ab\\xc3\n12345\nnext");
}

}  // namespace
}  // namespace proc

// `capture-controller follow NAMESPACE/POD`, the real binary: its usage errors, a controller that
// does not answer or has no such capture, and a live stream against a /captures served here
// that points at files a thread of the test writes in rotation, read back with libpcap.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/follow/pcap_stream.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using followtest::RingWriter;
using followtest::StreamReader;
using ::testing::AllOf;
using ::testing::HasSubstr;

// The binary, started with its stdout on `stdout_fd` (a pipe the test reads) or on a file, and
// its stderr on a file.
class Binary {
 public:
  Binary(const std::vector<std::string>& args, int stdout_fd = -1)
      : dir_("follow-command"), err_path_(dir_.file("stderr")), out_path_(dir_.file("stdout")) {
    std::vector<std::string> argv = {CAPTURE_CONTROLLER_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(posix_spawn(&pid_, raw[0], &actions, nullptr, raw.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Binary() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Its exit code, once it exited within `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout = 20s) {
    testsupport::waitUntil(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
          exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        },
        timeout, 10ms);
    return exit_code_;
  }
  std::string err() const { return testsupport::readFile(err_path_); }
  std::string out() const { return testsupport::readFile(out_path_); }

 private:
  testsupport::TempDir dir_;
  const std::string err_path_;
  const std::string out_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// A controller's /captures, whatever the test sets.
class CapturesServer {
 public:
  explicit CapturesServer(nlohmann::json captures) : captures_(std::move(captures)) {
    server_.Get("/captures", [this](const httplib::Request&, httplib::Response& response) {
      std::lock_guard lock(mutex_);
      response.set_content(nlohmann::json{{"captures", captures_}}.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    EXPECT_TRUE(testsupport::waitUntil([&] { return server_.is_running(); }));
  }
  ~CapturesServer() {
    server_.stop();
    thread_.join();
  }
  std::string addressFlag() const { return "--http-address=127.0.0.1:" + std::to_string(port_); }
  void set(nlohmann::json captures) {
    std::lock_guard lock(mutex_);
    captures_ = std::move(captures);
  }

 private:
  httplib::Server server_;
  std::mutex mutex_;
  nlohmann::json captures_;
  int port_ = 0;
  std::thread thread_;
};

// One entry of /captures, as capture::toJson and status::capturesJson write it.
nlohmann::json captureEntry(const std::string& pod_namespace, const std::string& name,
                            const std::string& file_path, int files,
                            const std::string& state = "Running") {
  return {{"podUid", "uid-" + name},
          {"podNamespace", pod_namespace},
          {"podName", name},
          {"state", state},
          {"files", files},
          {"filePath", file_path},
          {"sandboxId", "4b5c0ffee"},
          {"netnsPath", "/var/run/netns/cni-1"},
          {"pid", 4242},
          {"restarts", 0},
          {"lastError", ""},
          {"filesOnDisk", nlohmann::json::array()}};
}

// pcap00 ... pcap10: what tcpdump -W 11 writes, its index zero-padded to two digits (the binary
// names them with capture::rotationFileNames).
std::vector<std::string> elevenFiles(const std::string& base) {
  std::vector<std::string> files;
  for (int i = 0; i < 11; ++i) files.push_back(base + (i < 10 ? "0" : "") + std::to_string(i));
  return files;
}

TEST(FollowCommand, UsageErrorsExit2AndSayWhatIsExpected) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::string too_long_namespace(64, 'a');
  for (const Case& c : std::vector<Case>{
           {{"follow"}, "exactly one NAMESPACE/POD"},
           {{"follow", "default/web", "default/db"}, "exactly one NAMESPACE/POD"},
           {{"follow", "web"}, "not NAMESPACE/POD: web"},
           {{"follow", "default/web/0"}, "not NAMESPACE/POD"},
           {{"follow", "/web"}, "not a namespace"},
           {{"follow", "Default/web"}, "not a namespace: \"Default\""},
           {{"follow", "kube_system/web"}, "not a namespace"},
           {{"follow", too_long_namespace + "/web"}, "not a namespace"},
           {{"follow", "default/"}, "not a Pod name"},
           {{"follow", "default/-web"}, "not a Pod name: \"-web\""},
           {{"follow", "default/web..1"}, "not a Pod name"},
           {{"follow", "default/Web"}, "not a Pod name"},
       }) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    Binary binary(c.args);
    EXPECT_EQ(binary.wait(), 2);
    EXPECT_THAT(binary.err(), AllOf(HasSubstr("follow: "), HasSubstr(c.says),
                                    HasSubstr("usage: capture-controller follow NAMESPACE/POD")));
    EXPECT_EQ(binary.out(), "");
  }
  // The other subcommands still take no argument.
  Binary captures({"captures", "default/web"});
  EXPECT_EQ(captures.wait(), 2);
  EXPECT_THAT(captures.err(), HasSubstr("unexpected argument: default/web"));
}

TEST(FollowCommand, AControllerThatDoesNotAnswerIsAnError) {
  Binary binary({"follow", "default/web", "--http-address=127.0.0.1:1"});
  EXPECT_EQ(binary.wait(), 1);
  EXPECT_THAT(binary.err(), HasSubstr("not answering at 127.0.0.1:1"));
  EXPECT_EQ(binary.out(), "");
}

TEST(FollowCommand, NoCaptureOfThePodIsAnError) {
  // web is captured in another namespace only.
  CapturesServer server(
      nlohmann::json::array({captureEntry("prod", "web", "/capture-web.pcap", 3)}));
  Binary binary({"follow", "default/web", server.addressFlag()});
  EXPECT_EQ(binary.wait(), 1);
  EXPECT_EQ(binary.err(),
            "follow: no capture of default/web on this node (is it annotated "
            "tcpdump.antrea.io?)\n");
  EXPECT_EQ(binary.out(), "");
}

// What the kubectl plugin asks the controller for (`kubectl capture status|get`): one Pod's
// capture, and its files in the order tcpdump wrote them.
TEST(CapturesCommand, PodSelectsOneCaptureAndPathsListsItsFilesInTheControllersOrder) {
  nlohmann::json web = captureEntry("default", "web", "/capture-web.pcap", 3);
  web["filesOnDisk"] = nlohmann::json::array({{{"path", "/capture-web.pcap2"}, {"bytes", 10}},
                                              {{"path", "/capture-web.pcap0"}, {"bytes", 20}}});
  CapturesServer server(
      nlohmann::json::array({captureEntry("prod", "web", "/capture-prod-web.pcap", 1), web,
                             captureEntry("default", "db", "/capture-db.pcap", 1)}));

  Binary paths({"captures", "--pod=default/web", "--paths", server.addressFlag()});
  EXPECT_EQ(paths.wait(), 0) << paths.err();
  EXPECT_EQ(paths.out(), "/capture-web.pcap2\n/capture-web.pcap0\n");

  Binary json({"captures", "--pod=default/web", "--json", server.addressFlag()});
  EXPECT_EQ(json.wait(), 0) << json.err();
  EXPECT_EQ(nlohmann::json::parse(json.out()),
            nlohmann::json({{"captures", nlohmann::json::array({web})}}));

  Binary table({"captures", "--pod=default/web", server.addressFlag()});
  EXPECT_EQ(table.wait(), 0) << table.err();
  EXPECT_THAT(table.out(), AllOf(HasSubstr("default/web"), HasSubstr("capture-web.pcap2")));
  EXPECT_THAT(table.out(), ::testing::Not(HasSubstr("prod/web")));
}

TEST(CapturesCommand, PodWithoutACaptureAndPathsWithoutPodAreErrors) {
  CapturesServer server(
      nlohmann::json::array({captureEntry("prod", "web", "/capture-web.pcap", 3)}));
  Binary none({"captures", "--pod=default/web", "--paths", server.addressFlag()});
  EXPECT_EQ(none.wait(), 1);
  EXPECT_EQ(none.err(), "no capture of default/web on this node\n");
  EXPECT_EQ(none.out(), "");

  Binary bad({"captures", "--pod=web", server.addressFlag()});
  EXPECT_EQ(bad.wait(), 1);
  EXPECT_THAT(bad.err(), HasSubstr("--pod wants NAMESPACE/NAME"));

  Binary no_pod({"captures", "--paths", server.addressFlag()});
  EXPECT_EQ(no_pod.wait(), 2);
  EXPECT_THAT(no_pod.err(), HasSubstr("give --pod NAMESPACE/NAME"));
}

// The live stream, as `kubectl exec -i ... -- capture-controller follow default/web | wireshark
// -k -i -` gets it.
class LiveFollow : public ::testing::Test {
 protected:
  LiveFollow()
      : dir_("follow-live"),
        base_(dir_.file("capture-web.pcap")),
        files_(elevenFiles(base_)),
        server_(nlohmann::json::array(
            {captureEntry("default", "web", base_, 11), captureEntry("default", "db", "/x", 2)})) {
    int ends[2];
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    read_end_ = ends[0];
    write_end_ = ends[1];
  }
  ~LiveFollow() override {
    if (write_end_ >= 0) ::close(write_end_);
    if (read_end_ >= 0) ::close(read_end_);
  }

  // Starts the binary on the pipe, and a libpcap reader on its other end.
  void start() {
    binary_.emplace(std::vector<std::string>{"follow", "default/web", server_.addressFlag()},
                    write_end_);
    ::close(write_end_);  // the binary's now: the reader sees the end when it exits
    write_end_ = -1;
    reader_.emplace(read_end_);
    read_end_ = -1;
  }

  RingWriter::Options writerOptions() {
    return RingWriter::Options{
        .files = files_,
        .format = {},
        .packets_per_file = 4,
        .split_every = 0,
        .received = [this] { return reader_ ? reader_->received() : 0; },
        // The follower runs in the binary: the writer cannot see it wait on a partial record.
        .partial_waits = nullptr,
    };
  }

  testsupport::TempDir dir_;
  const std::string base_;
  const std::vector<std::string> files_;
  CapturesServer server_;
  int read_end_ = -1;
  int write_end_ = -1;
  std::optional<Binary> binary_;
  std::optional<StreamReader> reader_;
};

TEST_F(LiveFollow, StreamsTheCaptureAcrossARotationThenEndsWhenTheCaptureStops) {
  RingWriter writer(writerOptions());
  ASSERT_TRUE(writer.write(3)) << writer.error();  // capture-web.pcap00, being written
  start();
  ASSERT_TRUE(testsupport::waitUntil([&] { return reader_->received() == 3; })) << binary_->err();
  // tcpdump rotates to capture-web.pcap01, then 02.
  ASSERT_TRUE(writer.write(7)) << writer.error();
  ASSERT_TRUE(testsupport::waitUntil([&] { return reader_->received() == 10; }))
      << reader_->received() << " " << binary_->err();
  EXPECT_EQ(writer.currentIndex(), 2);

  // The annotation is removed: the capture leaves /captures (its files stay a moment).
  server_.set(nlohmann::json::array({captureEntry("default", "db", "/x", 2)}));
  const std::optional<int> exit_code = binary_->wait(15s);
  ASSERT_TRUE(exit_code.has_value()) << "follow did not end after the capture stopped";
  EXPECT_EQ(*exit_code, 0) << binary_->err();
  EXPECT_EQ(binary_->err(), "follow: the capture of default/web was stopped; 10 packets written\n");
  reader_->join();
  EXPECT_EQ(reader_->error(), "");
  EXPECT_EQ(followtest::seqsOf(reader_->packets()), followtest::range(0, 10));
  EXPECT_EQ(reader_->linkType(), 1);
}

TEST_F(LiveFollow, ARestartWithAnotherNEndsTheStream) {
  RingWriter writer(writerOptions());
  ASSERT_TRUE(writer.write(2)) << writer.error();
  start();
  ASSERT_TRUE(testsupport::waitUntil([&] { return reader_->received() == 2; })) << binary_->err();
  server_.set(nlohmann::json::array({captureEntry("default", "web", base_, 5, "Pending")}));
  const std::optional<int> exit_code = binary_->wait(15s);
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 0) << binary_->err();
  EXPECT_THAT(binary_->err(),
              AllOf(HasSubstr("the capture of default/web was restarted (now 5 files at " + base_),
                    HasSubstr("run follow again"), HasSubstr("2 packets written")));
  reader_->join();
  EXPECT_EQ(followtest::seqsOf(reader_->packets()), followtest::range(0, 2));
}

TEST_F(LiveFollow, ACompletedCaptureIsWrittenOutAndTheStreamEnds) {
  RingWriter writer(writerOptions());
  ASSERT_TRUE(writer.write(6)) << writer.error();  // pcap00 whole, pcap01 the newest
  server_.set(nlohmann::json::array({captureEntry("default", "web", base_, 11, "Completed")}));
  start();
  const std::optional<int> exit_code = binary_->wait(15s);
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 0) << binary_->err();
  EXPECT_EQ(binary_->err(),
            "follow: the capture of default/web has completed; 2 packets written\n");
  reader_->join();
  EXPECT_EQ(reader_->error(), "");
  // From the file tcpdump wrote last.
  EXPECT_EQ(followtest::seqsOf(reader_->packets()), followtest::range(4, 6));
}

TEST_F(LiveFollow, DeletedFilesEndTheStream) {
  RingWriter writer(writerOptions());
  ASSERT_TRUE(writer.write(5)) << writer.error();
  start();
  ASSERT_TRUE(testsupport::waitUntil([&] { return reader_->received() == 1; })) << binary_->err();
  for (const std::string& file : files_) ::unlink(file.c_str());
  const std::optional<int> exit_code = binary_->wait(15s);
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 0) << binary_->err();
  EXPECT_THAT(binary_->err(), HasSubstr("were deleted"));
}

}  // namespace

// The follower against files written as tcpdump -C -W writes them, its output read back with
// libpcap from a pipe as Wireshark reads it: one global header, every packet once and in order,
// across rotations and wrap-arounds; and how it ends: stopped, files deleted, reader gone, errors.
#include "follow/pcap_follower.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "tests/follow/pcap_stream.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace follow {
namespace {

using namespace std::chrono_literals;
using followtest::PcapFormat;
using followtest::range;
using followtest::RingWriter;
using followtest::seqsOf;
using followtest::StreamReader;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The names tcpdump -W `files` gives: the base, then the index zero-padded to the width of
// files-1; no index at all for one file (capture::rotationFileNames, which the subcommand uses
// and tests/capture checks; spelled out here so that this test links only the follower).
std::vector<std::string> ringOf(const std::string& base, int files) {
  if (files == 1) return {base};
  const int width = static_cast<int>(std::to_string(files - 1).size());
  std::vector<std::string> names;
  for (int i = 0; i < files; ++i) {
    std::string index = std::to_string(i);
    names.push_back(base + std::string(width - index.size(), '0') + index);
  }
  return names;
}

// A pcap file's bytes: its header, then the packets `seqs`, each `length` bytes long when that
// is given (packetData, then filler).
std::string pcapBytes(const PcapFormat& format, const std::vector<uint32_t>& seqs,
                      size_t length = 0) {
  std::string bytes = followtest::globalHeader(format);
  for (uint32_t seq : seqs) {
    std::string data = followtest::packetData(seq);
    if (length > 0) data.resize(length, 'x');
    bytes += followtest::recordHeader(format, seq, static_cast<uint32_t>(data.size())) + data;
  }
  return bytes;
}

// Writes `bytes` as the file `path`, created or truncated; false when it cannot.
bool writeBytes(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool written = followtest::writeAll(fd, bytes);
  ::close(fd);
  return written;
}

// A file written whole: its header, then the packets `seqs`.
void writeFile(const std::string& path, const PcapFormat& format,
               const std::vector<uint32_t>& seqs) {
  EXPECT_TRUE(writeBytes(path, pcapBytes(format, seqs))) << path;
}

void setMtime(const std::string& path, std::chrono::seconds ago) {
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  const timespec times[2] = {now, {now.tv_sec - ago.count(), now.tv_nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// A follower on its own thread, writing into a pipe that a StreamReader reads (or, with
// read_back = false, that the test reads itself).
class RunningFollower {
 public:
  RunningFollower(std::vector<std::string> files, bool read_back = true, bool use_inotify = true) {
    int ends[2];
    EXPECT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    read_end_ = ends[0];
    write_end_ = ends[1];
    follower_ = std::make_unique<PcapFollower>(FollowOptions{
        .files = std::move(files),
        .output_fd = write_end_,
        .should_stop = [this] { return stop_.load(); },
        // Without inotify the follower looks every poll_interval: often, for the test's pace.
        .poll_interval = use_inotify ? 200ms : 20ms,
        .use_inotify = use_inotify,
        .warn =
            [this](const std::string& message) {
              std::lock_guard lock(mutex_);
              warnings_.push_back(message);
            },
    });
    thread_ = std::thread([this] {
      result_ = follower_->run();
      ::close(write_end_);  // the reader's end of stream
      finished_ = true;
    });
    if (read_back) {
      reader_ = std::make_unique<StreamReader>(read_end_);
      read_end_ = -1;  // the reader's now
    }
  }
  ~RunningFollower() {
    stop_ = true;
    if (read_end_ >= 0) ::close(read_end_);  // a follower blocked on a full pipe gets EPIPE
    if (thread_.joinable()) thread_.join();
  }

  void stop() { stop_ = true; }
  // The follower's result, once it ended within `timeout`; the reader has then seen the end.
  absl::StatusOr<FollowEnd> result(std::chrono::milliseconds timeout = 20s) {
    if (!testsupport::waitUntil([this] { return finished_.load(); }, timeout)) {
      return absl::DeadlineExceededError("the follower did not end");
    }
    thread_.join();
    if (reader_) reader_->join();
    return result_;
  }

  PcapFollower& follower() { return *follower_; }
  StreamReader& reader() { return *reader_; }
  // Whether the reader came to hold `packets` packets within the default wait.
  bool waitReceived(uint64_t packets) {
    return testsupport::waitUntil([&] { return reader_->received() == packets; });
  }
  int readEnd() const { return read_end_; }
  void closeReadEnd() {
    ::close(read_end_);
    read_end_ = -1;
  }
  std::vector<std::string> warnings() {
    std::lock_guard lock(mutex_);
    return warnings_;
  }

 private:
  int read_end_ = -1;
  int write_end_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::unique_ptr<PcapFollower> follower_;
  absl::StatusOr<FollowEnd> result_ = absl::UnknownError("not run");
  std::thread thread_;
  std::unique_ptr<StreamReader> reader_;
  std::mutex mutex_;
  std::vector<std::string> warnings_;
};

RingWriter::Options writerOptions(RunningFollower& running, std::vector<std::string> files,
                                  PcapFormat format, int packets_per_file, int split_every) {
  return RingWriter::Options{
      .files = std::move(files),
      .format = format,
      .packets_per_file = packets_per_file,
      .split_every = split_every,
      .received = [&running] { return running.reader().received(); },
      .partial_waits = [&running] { return running.follower().stats().partial_record_waits; },
  };
}

// Writes the first `count` packets: the first alone until the reader has it (a follower that
// starts late begins with the newest file, not with file 0), then the others, until the reader
// holds them all.
::testing::AssertionResult writeFromTheStart(RingWriter& writer, RunningFollower& running,
                                             int count) {
  for (const int part : {1, count - 1}) {
    if (!writer.write(part)) return ::testing::AssertionFailure() << writer.error();
    if (!running.waitReceived(writer.written())) {
      return ::testing::AssertionFailure() << "the reader holds " << running.reader().received()
                                           << " of " << writer.written() << " packets";
    }
  }
  return ::testing::AssertionSuccess();
}

// The stream libpcap read: no error, the packets `seqs` in order with the timestamps written,
// and exactly the bytes the follower wrote (one global header: a second one would have been
// taken for a record, or made the byte counts differ).
void expectStream(RunningFollower& running, const PcapFormat& format,
                  const std::vector<uint32_t>& seqs) {
  StreamReader& reader = running.reader();
  EXPECT_TRUE(reader.opened()) << reader.error();
  EXPECT_THAT(reader.error(), IsEmpty());
  EXPECT_EQ(seqsOf(reader.packets()), seqs);
  for (const auto& packet : reader.packets()) {
    EXPECT_EQ(packet.seconds, followtest::secondsOf(packet.seq)) << packet.seq;
    EXPECT_EQ(packet.nanos, followtest::nanosOf(packet.seq, format.nanosecond)) << packet.seq;
    EXPECT_EQ(packet.length, followtest::packetData(packet.seq).size()) << packet.seq;
  }
  EXPECT_EQ(reader.linkType(), static_cast<int>(format.link_type));
  EXPECT_EQ(reader.parsedBytes(), running.follower().stats().bytes);
  EXPECT_EQ(running.follower().stats().packets, seqs.size());
}

struct RingCase {
  PcapFormat format;
  bool use_inotify = true;
};

// How gtest (and ctest's test names) show a case, rather than its bytes.
void PrintTo(const RingCase& c, std::ostream* out) {
  *out << (c.format.big_endian ? "big-endian" : "little-endian") << ", "
       << (c.format.nanosecond ? "nanosecond" : "microsecond")
       << (c.use_inotify ? "" : ", without inotify");
}

class FollowsTheRing : public ::testing::TestWithParam<RingCase> {};

TEST_P(FollowsTheRing, EveryPacketOnceInOrderAcrossRotationsAndWrapArounds) {
  const PcapFormat format = GetParam().format;
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  RunningFollower running(files, /*read_back=*/true, GetParam().use_inotify);
  RingWriter writer(writerOptions(running, files, format, /*packets_per_file=*/4,
                                  /*split_every=*/3));
  // Three whole rounds of three files and two packets into the fourth: two wrap-arounds, and
  // every third record written in three parts, the follower seen waiting on each. (The first
  // packet alone first: a follower that starts late begins with the newest file.)
  ASSERT_TRUE(writer.write(1)) << writer.error();
  ASSERT_TRUE(running.waitReceived(1));
  ASSERT_TRUE(writer.write(3 * 3 * 4 + 1)) << writer.error();
  ASSERT_TRUE(testsupport::waitUntil([&] { return running.reader().received() >= 38; }))
      << running.reader().received();
  EXPECT_GE(running.follower().stats().partial_record_waits, 2u * 12);
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kStopped);
  expectStream(running, format, range(0, 38));
  EXPECT_EQ(running.reader().swapped(),
            format.big_endian != (std::endian::native == std::endian::big));
  EXPECT_THAT(running.warnings(), IsEmpty());
  EXPECT_EQ(running.follower().stats().files_started, 10u);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FollowsTheRing,
    ::testing::Values(RingCase{PcapFormat{}}, RingCase{PcapFormat{.nanosecond = true}},
                      RingCase{PcapFormat{.big_endian = true}},
                      RingCase{PcapFormat{.big_endian = true, .nanosecond = true}},
                      RingCase{PcapFormat{}, /*use_inotify=*/false}),
    [](const ::testing::TestParamInfo<RingCase>& info) {
      return std::string(info.param.format.big_endian ? "BigEndian" : "LittleEndian") +
             (info.param.format.nanosecond ? "Nanosecond" : "Microsecond") +
             (info.param.use_inotify ? "" : "WithoutInotify");
    });

TEST(PcapFollower, OneFileRewrittenInPlaceIsFollowedFromItsStartEachTime) {
  // tcpdump -W 1 reopens its only file with O_TRUNC at each rotation: the file shrinks.
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 1);
  RunningFollower running(files);
  RingWriter writer(writerOptions(running, files, PcapFormat{}, /*packets_per_file=*/5,
                                  /*split_every=*/4));
  ASSERT_TRUE(writeFromTheStart(writer, running, 17));
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kStopped);
  expectStream(running, PcapFormat{}, range(0, 17));
  EXPECT_THAT(running.warnings(), IsEmpty());
}

TEST(PcapFollower, StartsWithTheNewestFileFromItsBeginningThenFollowsTcpdump) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  writeFile(files[0], {}, {100, 101});
  writeFile(files[1], {}, {200, 201});  // the one tcpdump writes now
  writeFile(files[2], {}, {300, 301});  // the previous round's
  setMtime(files[0], 30s);
  setMtime(files[1], 10s);
  setMtime(files[2], 20s);
  RunningFollower running(files);
  ASSERT_TRUE(running.waitReceived(2));
  writeFile(files[2], {}, {400, 401});  // tcpdump rotates: file 2 truncated and written
  ASSERT_TRUE(running.waitReceived(4));
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kStopped);
  EXPECT_EQ(seqsOf(running.reader().packets()), (std::vector<uint32_t>{200, 201, 400, 401}));
}

TEST(PcapFollower, ATcpdumpRestartedAfterAnExitIsFollowedToItsFirstFile) {
  // The controller restarts a tcpdump that exited and keeps its files: the new one begins again
  // with file 0, wherever the old one was. The old round's file 2 is not streamed.
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  RunningFollower running(files);
  RingWriter writer(writerOptions(running, files, PcapFormat{}, 4, 0));
  // File 2 holds 8..11; tcpdump is on file 1.
  ASSERT_TRUE(writeFromTheStart(writer, running, 18));
  writeFile(files[0], {}, {100, 101});
  ASSERT_TRUE(running.waitReceived(20));
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  std::vector<uint32_t> expected = range(0, 18);
  expected.insert(expected.end(), {100, 101});
  EXPECT_EQ(seqsOf(running.reader().packets()), expected);
  EXPECT_THAT(running.warnings(), IsEmpty());
}

TEST(PcapFollower, AStoppedCaptureIsWrittenOutThenTheStreamEnds) {
  // A capture that completed: its newest file is written out whole, and the follower ends.
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  writeFile(files[0], {}, {0, 1, 2});
  writeFile(files[1], {}, {3, 4});
  setMtime(files[0], 20s);
  setMtime(files[1], 10s);
  RunningFollower running(files);
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kStopped);
  expectStream(running, PcapFormat{}, {3, 4});
}

TEST(PcapFollower, NoFileAndStoppedEndsWithoutWritingAnything) {
  testsupport::TempDir dir("follow");
  RunningFollower running(ringOf(dir.file("capture-web.pcap"), 3));
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kStopped);
  EXPECT_EQ(running.follower().stats().bytes, 0u);
}

TEST(PcapFollower, RecordsLongerThanOneReadGoOutWhole) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 2);
  // Six records of 200 kB: more than one read of the follower's (1 MiB), none split.
  const std::string bytes = pcapBytes({}, range(0, 6), 200'000);
  ASSERT_TRUE(writeBytes(files[0], bytes));
  RunningFollower running(files);
  ASSERT_TRUE(running.waitReceived(6));
  running.stop();
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(seqsOf(running.reader().packets()), range(0, 6));
  EXPECT_THAT(running.reader().error(), IsEmpty());
  EXPECT_EQ(running.reader().parsedBytes(), bytes.size());
  for (const auto& packet : running.reader().packets()) EXPECT_EQ(packet.length, 200'000u);
}

TEST(PcapFollower, DeletedFilesEndTheStreamCleanly) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  RunningFollower running(files);
  RingWriter writer(writerOptions(running, files, PcapFormat{}, 4, 0));
  ASSERT_TRUE(writeFromTheStart(writer, running, 6));
  // What the controller does when the capture stops: every file goes.
  for (const std::string& file : files) std::filesystem::remove(file);
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kFilesRemoved);
  expectStream(running, PcapFormat{}, range(0, 6));
}

TEST(PcapFollower, ACorruptRecordLengthIsAnErrorAfterTheRecordsBeforeIt) {
  for (const uint32_t snaplen : {uint32_t{262144}, uint32_t{128}}) {
    SCOPED_TRACE(snaplen);
    testsupport::TempDir dir("follow");
    const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
    const PcapFormat format{.snaplen = snaplen};
    RunningFollower running(files);
    RingWriter writer(writerOptions(running, files, format, 4, 0));
    ASSERT_TRUE(writer.write(3)) << writer.error();
    // A record header claiming 2 GB, or more than the snaplen of 128 bytes allows.
    const uint32_t claimed = snaplen == 128 ? 1000 : 0x7fffffff;
    ASSERT_TRUE(writer.writeRaw(followtest::recordHeader(format, 3, claimed) + "garbage"));
    const auto end = running.result();
    ASSERT_FALSE(end.ok());
    EXPECT_EQ(end.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(end.status().message(), AllOf(HasSubstr(files[0]), HasSubstr("corrupt"),
                                              HasSubstr(std::to_string(claimed))));
    EXPECT_EQ(seqsOf(running.reader().packets()), range(0, 3));
  }
}

TEST(PcapFollower, AFileWhoseHeaderDiffersFromTheFirstIsAnError) {
  struct Case {
    const char* what;
    PcapFormat second;
    const char* named;
  };
  for (const Case& c : {
           Case{"link type", {.link_type = 105}, "link type 105"},
           Case{"snaplen", {.snaplen = 65535}, "snaplen 65535"},
           Case{"precision", {.nanosecond = true}, "nanosecond"},
           Case{"byte order", {.big_endian = true}, "big-endian"},
       }) {
    SCOPED_TRACE(c.what);
    testsupport::TempDir dir("follow");
    const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
    RunningFollower running(files);
    writeFile(files[0], {}, {0, 1});
    ASSERT_TRUE(running.waitReceived(2));
    writeFile(files[1], c.second, {2, 3});
    const auto end = running.result();
    ASSERT_FALSE(end.ok());
    EXPECT_EQ(end.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(end.status().message(),
                AllOf(HasSubstr(files[1]), HasSubstr(c.named), HasSubstr("first file's")));
    EXPECT_EQ(seqsOf(running.reader().packets()), range(0, 2));
  }
}

TEST(PcapFollower, AFileThatIsNotPcapIsAnError) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  {
    std::ofstream out(files[0], std::ios::binary);
    out << "this is no pcap file, only text long enough for a header";
  }
  RunningFollower running(files);
  const auto end = running.result();
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(end.status().message(), AllOf(HasSubstr(files[0]), HasSubstr("not a pcap file")));
}

TEST(PcapFollower, AReaderThatLeavesWhileTheFollowerWritesEndsIt) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  // 1.2 MB of records: far more than a pipe holds, so that the follower is blocked writing.
  const std::string bytes = pcapBytes({}, range(0, 6), 200'000);
  ASSERT_TRUE(writeBytes(files[0], bytes));
  RunningFollower running(files, /*read_back=*/false);
  char header[24];
  ASSERT_EQ(::read(running.readEnd(), header, sizeof(header)), 24);
  running.closeReadEnd();  // Wireshark quits: the write fails with EPIPE, SIGPIPE is blocked
  const auto end = running.result();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kOutputClosed);
  EXPECT_LT(running.follower().stats().bytes, bytes.size());
}

TEST(PcapFollower, AReaderThatLeavesAQuietCaptureEndsIt) {
  testsupport::TempDir dir("follow");
  const std::vector<std::string> files = ringOf(dir.file("capture-web.pcap"), 3);
  RunningFollower running(files, /*read_back=*/false);
  writeFile(files[0], {}, {0});
  const size_t stream_bytes = 24 + 16 + followtest::packetData(0).size();
  std::string stream(stream_bytes, '\0');
  size_t got = 0;
  while (got < stream_bytes) {
    const ssize_t n = ::read(running.readEnd(), stream.data() + got, stream_bytes - got);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  running.closeReadEnd();
  // No packet comes: the follower notices the pipe's reader gone while it waits.
  const auto end = running.result(5s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(*end, FollowEnd::kOutputClosed);
}

TEST(PcapFollower, FilesInSeveralDirectoriesAreRefused) {
  FollowOptions options;
  options.files = {"/a/capture-web.pcap0", "/b/capture-web.pcap1"};
  PcapFollower follower(std::move(options));
  EXPECT_EQ(follower.run().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace follow

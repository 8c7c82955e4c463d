#include "capture/saved_capture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "capture/capture_files.h"
#include "tests/capture/fakes.h"
#include "tests/support/files.h"

namespace capture {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

SavedCapture sample() {
  SavedCapture saved;
  saved.pod_uid = "uid-1";
  saved.pod_namespace = "shop";
  saved.pod_name = "web";
  saved.file_base = "capture-web.pcap";
  saved.spec = CaptureSpec{
      .files = 3, .filter = "tcp port 443", .duration = std::chrono::seconds(90), .packets = 1000};
  saved.sandbox_id = "4b5c0ffee1234567890abcdef";
  saved.netns_path = "/var/run/netns/cni-1";
  saved.began = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795341600123));
  saved.completed = true;
  saved.completed_reason = "the packet count of 1000 was reached";
  saved.packets_captured = 1000;
  saved.counts = TcpdumpCounts{.captured = 600, .received_by_filter = 610};
  return saved;
}

TEST(SavedCapture, NamesAreHiddenAndNeverACaptureFilesName) {
  EXPECT_EQ(savedCaptureFileName("capture-web.pcap"), ".capture-web.pcap.state");
  EXPECT_TRUE(isSavedCaptureFileName(".capture-web.pcap.state"));
  EXPECT_FALSE(isCaptureFileName(".capture-web.pcap.state"));
  for (const char* other : {"capture-web.pcap.state", ".capture-web.pcap.state.tmp",
                            ".capture-web.pcap0.state.x", ".web.pcap.state", ".state"}) {
    EXPECT_FALSE(isSavedCaptureFileName(other)) << other;
  }
}

TEST(SavedCapture, RoundTripsEveryField) {
  const SavedCapture saved = sample();
  auto parsed = parseSavedCapture(toText(saved));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, saved);

  SavedCapture unbounded = sample();
  unbounded.spec = CaptureSpec{};
  unbounded.spec.files = 1;
  unbounded.counts.reset();
  unbounded.completed = false;
  parsed = parseSavedCapture(toText(unbounded));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, unbounded);
}

TEST(SavedCapture, RefusesWhatThisControllerCouldNotHaveWritten) {
  const nlohmann::json good = nlohmann::json::parse(toText(sample()));
  const auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json changed = good;
    if (value.is_discarded()) {
      changed.erase(key);
    } else {
      changed[key] = std::move(value);
    }
    return changed.dump();
  };
  const nlohmann::json missing = nlohmann::json(nlohmann::json::value_t::discarded);
  for (const std::string& bad :
       {std::string(""), std::string("{not json"), std::string("[]"), std::string("null"),
        with("version", 2), with("podUid", missing), with("podUid", ""), with("files", 0),
        with("files", "3"), with("fileBase", "../etc/passwd"), with("fileBase", "web.pcap"),
        with("fileBase", "capture-a/b.pcap"), with("durationSeconds", 0),
        with("durationSeconds", 86401), with("packetLimit", 0), with("packetLimit", 100000001),
        with("counts", "many"), with("completed", "yes"), with("beganUnixMillis", missing)}) {
    const auto parsed = parseSavedCapture(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("not a saved capture")) << bad;
  }
}

class SavedCapturesTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  SavedCaptures saved_{dir_.path()};
};

TEST_F(SavedCapturesTest, SavesLoadsAndRemovesWithoutLeavingATemporaryFile) {
  ASSERT_TRUE(saved_.save(sample()).ok());
  EXPECT_THAT(dir_.allNames(), ElementsAre(".capture-web.pcap.state"));
  struct stat info {};
  ASSERT_EQ(::stat(dir_.file(".capture-web.pcap.state").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u) << "its Pod's name and filter are nobody else's";

  SavedCapture later = sample();
  later.packets_captured = 5;
  ASSERT_TRUE(saved_.save(later).ok());  // replaces it
  auto loaded = saved_.loadAll();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].file_name, ".capture-web.pcap.state");
  EXPECT_EQ((*loaded)[0].file_base, "capture-web.pcap");
  ASSERT_TRUE((*loaded)[0].capture.ok());
  EXPECT_EQ((*loaded)[0].capture->packets_captured, 5u);

  ASSERT_TRUE(saved_.remove("capture-web.pcap").ok());
  ASSERT_TRUE(saved_.remove("capture-web.pcap").ok()) << "already gone is no error";
  EXPECT_THAT(dir_.allNames(), IsEmpty());
}

TEST_F(SavedCapturesTest, LoadsNothingItCannotTrustAndNeverFollowsOrBlocks) {
  dir_.touch(".capture-garbage.pcap.state", "{\"version\": 1}");
  dir_.touch(".capture-huge.pcap.state", std::string(100 * 1024, ' '));
  ASSERT_EQ(::mkfifo(dir_.file(".capture-fifo.pcap.state").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("/etc/hostname", dir_.file(".capture-link.pcap.state").c_str()), 0);
  ASSERT_EQ(::mkdir(dir_.file(".capture-dir.pcap.state").c_str(), 0700), 0);
  dir_.touch("capture-web.pcap0");  // a capture file, not a saved capture
  auto loaded = saved_.loadAll();   // a FIFO opened for reading would block here
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 5u);
  for (const SavedCaptures::Loaded& entry : *loaded) {
    EXPECT_FALSE(entry.capture.ok()) << entry.file_name;
  }
  EXPECT_THAT((*loaded)[1].capture.status().message(), HasSubstr("not a regular file"))
      << (*loaded)[1].file_name;
}

TEST_F(SavedCapturesTest, ASaveNeverWritesThroughALinkPlantedUnderItsName) {
  const std::string target = dir_.file("target");
  dir_.touch("target", "untouched");
  ASSERT_EQ(::symlink(target.c_str(), dir_.file(".capture-web.pcap.state.tmp").c_str()), 0);
  EXPECT_FALSE(saved_.save(sample()).ok());
  EXPECT_EQ(testsupport::readFile(target), "untouched");
}

TEST_F(SavedCapturesTest, RemovesOnlyRegularFilesAndSkipsTheRestWithoutAnError) {
  testing::TempDir outside;
  outside.touch("target", "untouched");
  ASSERT_EQ(::mkdir(dir_.file(".capture-dir.pcap.state").c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo(dir_.file(".capture-fifo.pcap.state").c_str(), 0600), 0);
  ASSERT_EQ(
      ::symlink(outside.file("target").c_str(), dir_.file(".capture-link.pcap.state").c_str()), 0);
  ASSERT_EQ(
      ::symlink(outside.file("target").c_str(), dir_.file(".capture-link.pcap.state.tmp").c_str()),
      0);
  ASSERT_EQ(::link(outside.file("target").c_str(), dir_.file(".capture-hard.pcap.state").c_str()),
            0);
  for (const char* base :
       {"capture-dir.pcap", "capture-fifo.pcap", "capture-link.pcap", "capture-hard.pcap"}) {
    const absl::Status removed = saved_.remove(base);
    EXPECT_TRUE(removed.ok()) << base << ": " << removed;
  }
  EXPECT_THAT(dir_.allNames(),
              UnorderedElementsAre(".capture-dir.pcap.state", ".capture-fifo.pcap.state",
                                   ".capture-link.pcap.state", ".capture-link.pcap.state.tmp"))
      << "the hard link is a regular file: its name goes";
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
  EXPECT_THAT(outside.names(), ElementsAre("target"));
}

TEST_F(SavedCapturesTest, ASaveNeverWritesIntoAHardLinkOrAFifoLeftUnderItsTemporaryName) {
  testing::TempDir outside;
  outside.touch("target", "untouched");
  ASSERT_EQ(
      ::link(outside.file("target").c_str(), dir_.file(".capture-web.pcap.state.tmp").c_str()), 0);
  ASSERT_TRUE(saved_.save(sample()).ok()) << "a regular file left there is a crash's: replaced";
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
  EXPECT_THAT(dir_.allNames(), ElementsAre(".capture-web.pcap.state"));

  ASSERT_EQ(::mkfifo(dir_.file(".capture-web.pcap.state.tmp").c_str(), 0600), 0);
  const absl::Status fifo = saved_.save(sample());  // would block, opened for writing
  EXPECT_FALSE(fifo.ok());
  EXPECT_THAT(fifo.message(), AllOf(HasSubstr(".capture-web.pcap.state.tmp"), HasSubstr("a FIFO")));
  ASSERT_EQ(::unlink(dir_.file(".capture-web.pcap.state.tmp").c_str()), 0);

  ASSERT_EQ(::mkdir(dir_.file(".capture-web.pcap.state.tmp").c_str(), 0700), 0);
  EXPECT_THAT(saved_.save(sample()).message(), HasSubstr("a directory"));
}

}  // namespace
}  // namespace capture

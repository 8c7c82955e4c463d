#include "capture/capture_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>

#include "tests/capture/fakes.h"

namespace capture {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using ::testing::UnorderedElementsAre;

TEST(RotationFileNames, FollowTcpdumpsMakeFilename) {
  // N=1: no suffix at all; otherwise the index zero-padded to the width of N-1.
  EXPECT_THAT(rotationFileNames("capture-web.pcap", 1), ElementsAre("capture-web.pcap"));
  EXPECT_THAT(rotationFileNames("capture-web.pcap", 3),
              ElementsAre("capture-web.pcap0", "capture-web.pcap1", "capture-web.pcap2"));
  const auto ten = rotationFileNames("capture-web.pcap", 10);
  EXPECT_EQ(ten.front(), "capture-web.pcap0");
  EXPECT_EQ(ten.back(), "capture-web.pcap9");
  const auto eleven = rotationFileNames("capture-web.pcap", 11);
  EXPECT_EQ(eleven.front(), "capture-web.pcap00");
  EXPECT_EQ(eleven.back(), "capture-web.pcap10");
  EXPECT_EQ(rotationFileNames("capture-web.pcap", 101).back(), "capture-web.pcap100");
}

TEST(RotationSuffixWidth, IsTheDigitsOfNMinusOne) {
  EXPECT_EQ(rotationSuffixWidth(1), 0);
  EXPECT_EQ(rotationSuffixWidth(2), 1);
  EXPECT_EQ(rotationSuffixWidth(10), 1);
  EXPECT_EQ(rotationSuffixWidth(11), 2);
  EXPECT_EQ(rotationSuffixWidth(101), 3);
}

TEST(IsFileOfCapture, MatchesTheExactBaseFollowedByDigitsOnly) {
  EXPECT_TRUE(isFileOfCapture("capture-web.pcap", "capture-web.pcap"));
  EXPECT_TRUE(isFileOfCapture("capture-web.pcap", "capture-web.pcap0"));
  EXPECT_TRUE(isFileOfCapture("capture-web.pcap", "capture-web.pcap17"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-web-1.pcap0"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-web-1.pcap"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-web.pcap0.gz"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-web.pcapx"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-we.pcap0"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "xcapture-web.pcap0"));
  EXPECT_FALSE(isFileOfCapture("capture-web.pcap", "capture-ns_web.pcap0"));
}

TEST(IsCaptureFileName, RecognisesEveryNameACaptureCanWrite) {
  EXPECT_TRUE(isCaptureFileName("capture-web.pcap"));
  EXPECT_TRUE(isCaptureFileName("capture-web.pcap0"));
  EXPECT_TRUE(isCaptureFileName("capture-ns_web.pcap12"));
  EXPECT_FALSE(isCaptureFileName("capture-.pcap"));
  EXPECT_FALSE(isCaptureFileName("capture-web.pcap.tmp"));
  EXPECT_FALSE(isCaptureFileName("web.pcap0"));
  EXPECT_FALSE(isCaptureFileName("capture-web.txt"));
  EXPECT_FALSE(isCaptureFileName("etc"));
}

TEST(FileBase, PlainAndQualifiedNames) {
  EXPECT_EQ(plainFileBase("default", "web", 10), "capture-web.pcap");
  EXPECT_EQ(qualifiedFileBase("team-b", "web", 10), "capture-team-b_web.pcap");
}

TEST(FileBase, ShortensNamesThatWouldNotFitNameMaxDeterministically) {
  const std::string longest(253, 'a');
  for (int max_files : {1, 10, 11, 1000}) {
    SCOPED_TRACE(max_files);
    const std::string plain = plainFileBase("default", longest, max_files);
    const std::string qualified = qualifiedFileBase("default", longest, max_files);
    for (const std::string& base : {plain, qualified}) {
      EXPECT_LE(base.size() + rotationSuffixWidth(max_files), static_cast<size_t>(NAME_MAX));
      EXPECT_THAT(base, ::testing::StartsWith("capture-aaaa"));
      EXPECT_THAT(base, ::testing::EndsWith(".pcap"));
      EXPECT_TRUE(isCaptureFileName(rotationFileNames(base, max_files).back()));
    }
    EXPECT_EQ(plain, plainFileBase("default", longest, max_files));  // same after a restart
    EXPECT_NE(plain, plainFileBase("other", longest, max_files));    // differs by namespace
  }
  // A name that just fits is kept whole.
  const std::string fits(NAME_MAX - 8 - 5 - 1, 'b');
  EXPECT_EQ(plainFileBase("default", fits, 10), "capture-" + fits + ".pcap");
  EXPECT_NE(plainFileBase("default", fits + "b", 10), "capture-" + fits + "b.pcap");
}

TEST(CaptureFiles, DeletesOneCapturesFilesAndNothingElse) {
  TempDir dir;
  for (const char* name :
       {"capture-web.pcap0", "capture-web.pcap1", "capture-web.pcap", "capture-web-1.pcap0",
        "capture-web-1.pcap", "capture-ns_web.pcap0", "capture-web.pcap0.gz", "notes.txt"}) {
    dir.touch(name);
  }
  CaptureFiles files(dir.path());
  EXPECT_THAT(*files.filesOf("capture-web.pcap"),
              ElementsAre("capture-web.pcap", "capture-web.pcap0", "capture-web.pcap1"));
  EXPECT_THAT(*files.removeFilesOf("capture-web.pcap"),
              ElementsAre("capture-web.pcap", "capture-web.pcap0", "capture-web.pcap1"));
  EXPECT_THAT(dir.names(),
              UnorderedElementsAre("capture-web-1.pcap0", "capture-web-1.pcap",
                                   "capture-ns_web.pcap0", "capture-web.pcap0.gz", "notes.txt"));
  EXPECT_TRUE(files.removeFilesOf("capture-web.pcap")->empty());
}

TEST(CaptureFiles, RemovesEveryCaptureFile) {
  TempDir dir;
  for (const char* name :
       {"capture-a.pcap0", "capture-a.pcap1", "capture-b.pcap", "capture-c.pcap0.gz", "keep.txt"}) {
    dir.touch(name);
  }
  CaptureFiles files(dir.path());
  EXPECT_THAT(*files.removeAllCaptureFiles(),
              UnorderedElementsAre("capture-a.pcap0", "capture-a.pcap1", "capture-b.pcap"));
  EXPECT_THAT(dir.names(), UnorderedElementsAre("capture-c.pcap0.gz", "keep.txt"));
}

TEST(CaptureFiles, ReportsADirectoryItCannotList) {
  CaptureFiles files("/nonexistent/capture-dir");
  auto listed = files.allCaptureFiles();
  ASSERT_FALSE(listed.ok());
  EXPECT_THAT(listed.status().message(), HasSubstr("/nonexistent/capture-dir"));
}

TEST(CaptureFiles, JoinsPaths) {
  EXPECT_EQ(CaptureFiles("/").pathOf("capture-web.pcap"), "/capture-web.pcap");
  EXPECT_EQ(CaptureFiles("/var/captures").pathOf("capture-web.pcap"),
            "/var/captures/capture-web.pcap");
}

}  // namespace
}  // namespace capture

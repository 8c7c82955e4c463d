#include "capture/capture_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "absl/strings/str_format.h"
#include "tests/capture/fakes.h"
#include "tests/support/files.h"

namespace capture {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using ::testing::UnorderedElementsAre;

// A Unix socket bound at `path` (it stays when the descriptor closes).
bool makeSocket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, path.data(), path.size());
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

// Everything but a regular file, named like the files of capture-web.pcap, plus a regular file
// (pcap0) and a hard link (pcap4) to a file outside; `outside` holds what the links point to.
void plantEverything(const TempDir& dir, const TempDir& outside) {
  outside.touch("target", "untouched");
  outside.touch("linked", "untouched too");
  dir.touch("capture-web.pcap0");
  ASSERT_EQ(::mkdir(dir.file("capture-web.pcap1").c_str(), 0700), 0);
  dir.touch("capture-web.pcap1/inside");
  ASSERT_EQ(::mkfifo(dir.file("capture-web.pcap2").c_str(), 0600), 0);
  ASSERT_EQ(::symlink(outside.file("target").c_str(), dir.file("capture-web.pcap3").c_str()), 0);
  ASSERT_EQ(::link(outside.file("linked").c_str(), dir.file("capture-web.pcap4").c_str()), 0);
  ASSERT_TRUE(makeSocket(dir.file("capture-web.pcap5")));
  ASSERT_EQ(::symlink(outside.path().c_str(), dir.file("capture-dir.pcap").c_str()), 0);
}

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

TEST(CaptureFiles, ACapturesFilesAreItsRegularFilesOnly) {
  TempDir dir;
  dir.touch("capture-web.pcap0");
  dir.touch("outside");
  ASSERT_EQ(::symlink(dir.file("outside").c_str(), dir.file("capture-web.pcap1").c_str()), 0);
  ASSERT_EQ(::mkdir(dir.file("capture-web.pcap2").c_str(), 0700), 0);
  EXPECT_THAT(*CaptureFiles(dir.path()).filesOf("capture-web.pcap"),
              ElementsAre("capture-web.pcap0"))
      << "a Completed capture keeps, and names, only what tcpdump wrote";
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

TEST(CaptureFiles, DeletesOnlyRegularFilesAndNeverFollowsALink) {
  TempDir dir;
  TempDir outside;
  plantEverything(dir, outside);
  CaptureFiles files(dir.path());
  auto removed = files.removeFilesOf("capture-web.pcap");
  ASSERT_TRUE(removed.ok()) << removed.status() << ": what is skipped is no error";
  // A hard link is a regular file: its name goes, the file it shares stays whole.
  EXPECT_THAT(*removed, ElementsAre("capture-web.pcap0", "capture-web.pcap4"));
  EXPECT_THAT(dir.names(),
              UnorderedElementsAre("capture-web.pcap1", "capture-web.pcap2", "capture-web.pcap3",
                                   "capture-web.pcap5", "capture-dir.pcap"));
  EXPECT_EQ(testsupport::readFile(dir.file("capture-web.pcap1/inside")), "x");
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
  EXPECT_EQ(testsupport::readFile(outside.file("linked")), "untouched too");
  EXPECT_THAT(outside.names(), UnorderedElementsAre("target", "linked"));
}

TEST(CaptureFiles, StartUpRemovalSkipsWhatIsNoFileAndDoesNotFail) {
  TempDir dir;
  TempDir outside;
  plantEverything(dir, outside);
  dir.touch("capture-db.pcap");
  CaptureFiles files(dir.path());
  auto removed = files.removeAllCaptureFiles();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, ElementsAre("capture-db.pcap", "capture-web.pcap0", "capture-web.pcap4"));
  EXPECT_THAT(dir.names(),
              UnorderedElementsAre("capture-web.pcap1", "capture-web.pcap2", "capture-web.pcap3",
                                   "capture-web.pcap5", "capture-dir.pcap"));
  EXPECT_THAT(outside.names(), UnorderedElementsAre("target", "linked"));
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
}

TEST(CaptureFiles, CountsTheBytesOfRegularFilesOnly) {
  TempDir dir;
  TempDir outside;
  outside.touch("big", std::string(5000, 'x'));
  dir.touch("capture-web.pcap0", "12345");
  ASSERT_EQ(::symlink(outside.file("big").c_str(), dir.file("capture-web.pcap1").c_str()), 0);
  ASSERT_EQ(::mkdir(dir.file("capture-web.pcap2").c_str(), 0700), 0);
  EXPECT_EQ(*CaptureFiles(dir.path()).bytesOf("capture-web.pcap"), 5u);
}

TEST(CaptureFiles, TcpdumpMayWriteWhereNothingOrItsOwnFilesAre) {
  TempDir dir;
  CaptureFiles files(dir.path());
  EXPECT_TRUE(files.checkSafeToWrite("capture-web.pcap", 3).ok());
  dir.touch("capture-web.pcap0");  // a bounded capture going on rewrites its files
  dir.touch("capture-web.pcap1");
  ASSERT_EQ(::mkdir(dir.file("capture-web.pcap3").c_str(), 0700), 0);  // not one N=3 writes
  ASSERT_EQ(::symlink("/etc/passwd", dir.file("capture-web-1.pcap0").c_str()), 0);
  EXPECT_TRUE(files.checkSafeToWrite("capture-web.pcap", 3).ok());
  EXPECT_FALSE(files.checkSafeToWrite("capture-web.pcap", 4).ok());
}

TEST(CaptureFiles, TcpdumpNeverWritesThroughWhatIsPlantedUnderItsNames) {
  TempDir outside;
  outside.touch("target", "untouched");
  const std::string target = outside.file("target");
  struct Planted {
    const char* what;
    std::function<int(const std::string&)> plant;
    const char* message;
  };
  const std::vector<Planted> planted = {
      {"symlink", [&](const std::string& p) { return ::symlink(target.c_str(), p.c_str()); },
       "is a symbolic link: refusing to let tcpdump write through it"},
      {"dangling symlink",
       [&](const std::string& p) { return ::symlink("/nonexistent/x", p.c_str()); },
       "is a symbolic link"},
      {"hard link", [&](const std::string& p) { return ::link(target.c_str(), p.c_str()); },
       "is a regular file with 2 links"},
      {"directory", [](const std::string& p) { return ::mkdir(p.c_str(), 0700); },
       "is a directory, not a regular file"},
      {"FIFO", [](const std::string& p) { return ::mkfifo(p.c_str(), 0600); },
       "is a FIFO, not a regular file"},
      {"socket", [](const std::string& p) { return makeSocket(p) ? 0 : -1; },
       "is a socket, not a regular file"},
  };
  for (const Planted& each : planted) {
    SCOPED_TRACE(each.what);
    for (int files : {1, 3}) {
      TempDir dir;
      const std::string name = rotationFileNames("capture-web.pcap", files).back();
      ASSERT_EQ(each.plant(dir.file(name)), 0);
      const absl::Status checked =
          CaptureFiles(dir.path()).checkSafeToWrite("capture-web.pcap", files);
      EXPECT_EQ(checked.code(), absl::StatusCode::kFailedPrecondition) << checked;
      EXPECT_THAT(checked.message(), AllOf(HasSubstr(dir.file(name)), HasSubstr(each.message)));
    }
  }
  EXPECT_EQ(testsupport::readFile(target), "untouched");
}

TEST(DescribeFileType, NamesEveryKind) {
  EXPECT_EQ(describeFileType(S_IFREG | 0644), "a regular file");
  EXPECT_EQ(describeFileType(S_IFDIR | 0755), "a directory");
  EXPECT_EQ(describeFileType(S_IFLNK | 0777), "a symbolic link");
  EXPECT_EQ(describeFileType(S_IFIFO), "a FIFO");
  EXPECT_EQ(describeFileType(S_IFSOCK), "a socket");
  EXPECT_EQ(describeFileType(S_IFCHR), "a character device");
  EXPECT_EQ(describeFileType(S_IFBLK), "a block device");
}

class CheckCaptureDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the directory must be root's";
    ASSERT_FALSE(dir_.path().empty());
  }
  TempDir dir_;
};

TEST_F(CheckCaptureDir, AcceptsAPrivateDirectoryOfRoot) {
  EXPECT_TRUE(checkCaptureDir(dir_.path()).ok()) << "mkdtemp's 0700, as the e2e tests make it";
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  EXPECT_TRUE(checkCaptureDir(dir_.path()).ok());
  EXPECT_TRUE(checkCaptureDir(dir_.path() + "/").ok());
  struct stat root {};
  ASSERT_EQ(::stat("/", &root), 0);
  if (root.st_uid == 0 && (root.st_mode & 022) == 0) {
    EXPECT_TRUE(checkCaptureDir("/").ok()) << "the DaemonSet's --capture-dir=/";
  }
}

TEST_F(CheckCaptureDir, RefusesADirectoryOthersCanWrite) {
  for (mode_t mode : {0777, 0770, 0720, 0702, 01777}) {
    SCOPED_TRACE(mode);
    ASSERT_EQ(::chmod(dir_.path().c_str(), mode), 0);
    const absl::Status checked = checkCaptureDir(dir_.path());
    EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        checked.message(),
        AllOf(HasSubstr("--capture-dir " + dir_.path()), HasSubstr("writable by group or others"),
              HasSubstr(absl::StrFormat("(mode 0%o)", mode)), HasSubstr("chmod go-w")));
  }
}

TEST_F(CheckCaptureDir, RefusesADirectoryNotOwnedByRoot) {
  ASSERT_EQ(::chown(dir_.path().c_str(), 65534, 65534), 0);
  const absl::Status checked = checkCaptureDir(dir_.path());
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(checked.message(), AllOf(HasSubstr("--capture-dir " + dir_.path()),
                                       HasSubstr("owned by uid 65534, not root")));
}

TEST_F(CheckCaptureDir, RefusesWhatIsNoDirectoryALinkAndAMissingPath) {
  dir_.touch("file");
  absl::Status checked = checkCaptureDir(dir_.file("file"));
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(checked.message(), HasSubstr("is a regular file, not a directory"));

  checked = checkCaptureDir(dir_.file("missing"));
  EXPECT_EQ(checked.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(checked.message(), HasSubstr("--capture-dir " + dir_.file("missing")));

  ASSERT_EQ(::mkdir(dir_.file("real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir_.file("real").c_str(), dir_.file("link").c_str()), 0);
  checked = checkCaptureDir(dir_.file("link"));
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(checked.message(), AllOf(HasSubstr("is a symbolic link to " + dir_.file("real")),
                                       HasSubstr("give the directory itself")));
  EXPECT_TRUE(checkCaptureDir(dir_.file("real")).ok());

  EXPECT_EQ(checkCaptureDir("").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace capture

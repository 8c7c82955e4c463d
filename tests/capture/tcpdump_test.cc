#include "capture/tcpdump.h"

#include <gtest/gtest.h>

namespace capture {
namespace {

TEST(TcpdumpErrorLines, LeavesOutTheBannerAndTheStatistics) {
  // What tcpdump 4.99.3 wrote when the interface it listened on was deleted.
  EXPECT_EQ(tcpdumpErrorLines("tcpdump: listening on v0, link-type EN10MB (Ethernet), snapshot "
                              "length 262144 bytes\n"
                              "tcpdump: pcap_loop: The interface disappeared\n"
                              "0 packets captured\n"
                              "4 packets received by filter\n"
                              "0 packets dropped by kernel\n"
                              "1 packet dropped by interface"),
            "tcpdump: pcap_loop: The interface disappeared");
}

TEST(TcpdumpErrorLines, KeepsEveryErrorLine) {
  EXPECT_EQ(tcpdumpErrorLines("tcpdump: nosuch: No such device exists\n"
                              "(No such device exists)"),
            "tcpdump: nosuch: No such device exists\n(No such device exists)");
  EXPECT_EQ(tcpdumpErrorLines("tcpdump: Couldn't find user 'root'"),
            "tcpdump: Couldn't find user 'root'");
  // Only tcpdump's own statistics go, not a line that merely looks a bit like them.
  EXPECT_EQ(tcpdumpErrorLines("packets captured\n12 packets lost\nx 1 packet captured"),
            "packets captured\n12 packets lost\nx 1 packet captured");
  EXPECT_EQ(tcpdumpErrorLines(""), "");
  EXPECT_EQ(tcpdumpErrorLines("12 packets captured\n13 packets received by filter"), "");
}

}  // namespace
}  // namespace capture

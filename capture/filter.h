#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace capture {

// A longer filter is not a mistake anyone makes by hand, and it ends up quoted in Events.
inline constexpr size_t kMaxFilterBytes = 1024;

// Checks the pcap filter expression of kFilterAnnotation before any tcpdump runs, so that a
// mistake is one InvalidCaptureAnnotation Warning instead of a tcpdump that fails and is
// retried. It must be at most kMaxFilterBytes, hold no control character (bytes below 0x20
// and 0x7f: tabs and newlines too, a filter is one line), not be blank, and compile with
// libpcap: the compiler tcpdump itself will use, so that what compiles here compiles there.
// It is compiled, optimised, for Ethernet (DLT_EN10MB: a Pod's eth0) with an unknown netmask,
// as tcpdump's netmask is only known inside the Pod; so "ip broadcast" is rejected here even
// though tcpdump would take it. InvalidArgument quotes libpcap's own error, e.g.
//   tcpdump.antrea.io/filter "tcp port 99999" does not compile: illegal port number 99999 > 65535
//
// The expression is later given to tcpdump as one argument after "--", so it can never be
// read as an option; this check is the second line, not the only one.
//
// Thread-safe (libpcap >= 1.8 compiles reentrantly; CMake requires it). It does no I/O of its
// own, but libpcap resolves names while compiling: "port http" reads /etc/services, and
// "host <name>" asks the resolver, which can take as long as the resolver does.
absl::Status validateCaptureFilter(absl::string_view expression);

}  // namespace capture

#pragma once

#include <string>

#include "absl/status/status.h"

namespace proc {

// How the child closes the descriptors it inherited, between clone() and exec (spawn.h), best
// first. Every way leaves 0-2 and the status pipe (close-on-exec) open and nothing else at exec.
enum class FdClosing {
  // close_range(3, ~0, CLOSE_RANGE_CLOEXEC): one system call (Linux 5.11).
  kCloseRangeCloexec,
  // close_range(3, ~0, 0) in two ranges around the status pipe (Linux 5.9 and 5.10: EKS's
  // Amazon Linux 2, whose close_range refuses CLOSE_RANGE_CLOEXEC with EINVAL).
  kCloseRange,
  // getdents64 on the child's own /proc/self/fd, opened in the child (its table is a copy of
  // the parent's at clone(), which other threads change afterwards), closing each listed
  // descriptor: a cost in the descriptors open (about 4 us each on a loaded 2-CPU VM: 0.1 ms
  // for 30), whatever RLIMIT_NOFILE is. Raw system calls into a stack buffer: no allocation.
  kProcSelfFd,
  // close() of every number from 3 to the RLIMIT_NOFILE soft limit: correct without /proc,
  // but one system call per possible descriptor, about 2 us each on that VM: 40 ms at 20,000,
  // 2 s at a node's usual 1,048,576. The last resort only: a kernel before 5.9 without /proc.
  kUpToLimit,
};
const char* describe(FdClosing closing);

// What this kernel (and whatever seccomp profile the controller runs under) offers the code in
// proc/. Each capability is tried for real, never inferred from the release: distributions
// backport, and a seccomp profile can refuse a call the kernel has (with ENOSYS or EPERM).
struct KernelFeatures {
  std::string release;               // uname -r
  bool pidfd_send_signal = false;    // Linux 5.1
  bool clone_pidfd = false;          // clone(CLONE_PIDFD), 5.2
  bool pidfd_poll = false;           // a pidfd is readable once its process exited (epoll), 5.3
  bool waitid_pidfd = false;         // waitid(P_PIDFD), 5.4
  bool close_range = false;          // 5.9
  bool close_range_cloexec = false;  // CLOSE_RANGE_CLOEXEC, 5.11
  bool proc_self_fd = false;         // /proc/self/fd lists the open descriptors

  FdClosing fdClosing() const;
  // One line for the start-up log: "kernel 6.1.0: pidfds; inherited descriptors closed with
  // close_range(CLOSE_RANGE_CLOEXEC)".
  std::string describe() const;
};

// Probes now: about a millisecond, one short-lived child (cloned with CLONE_PIDFD, polled,
// killed with pidfd_send_signal, reaped with waitid(P_PIDFD): what the launcher does).
KernelFeatures probeKernelFeatures();
// Probed once per process, on the first call (thread-safe); startChild() uses it.
const KernelFeatures& kernelFeatures();

// What proc/ cannot work without: pidfds from clone, polled, signalled and reaped (waitid
// P_PIDFD), that is Linux 5.4. Closing inherited descriptors always has a way (FdClosing).
// FailedPrecondition names the kernel and what it lacks: "kernel 5.2.0 lacks pollable pidfds
// (Linux 5.3), waitid(P_PIDFD) (Linux 5.4): capture-controller needs Linux 5.4 or later".
absl::Status checkKernelFloor(const KernelFeatures& features);
// checkKernelFloor(kernelFeatures()): call once at start-up, and exit on an error.
absl::Status checkKernelFloor();

}  // namespace proc

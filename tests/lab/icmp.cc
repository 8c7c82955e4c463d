#include "tests/lab/icmp.h"

#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lab {
namespace {

uint16_t checksum(const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len % 2) sum += p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

}  // namespace

absl::Status pingOnce(const std::string& ipv4, std::chrono::milliseconds timeout) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ipv4.c_str(), &to.sin_addr) != 1) {
    return absl::InvalidArgumentError("not an IPv4 address: " + ipv4);
  }
  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0)
    return absl::PermissionDeniedError("raw ICMP socket: " + std::string(strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  const uint16_t id = static_cast<uint16_t>(::getpid());
  const uint16_t sequence =
      static_cast<uint16_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  icmphdr request{};
  request.type = ICMP_ECHO;
  request.un.echo.id = htons(id);
  request.un.echo.sequence = htons(sequence);
  request.checksum = checksum(&request, sizeof request);
  if (::sendto(fd, &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    return absl::UnavailableError("ICMP echo to " + ipv4 + ": " + strerror(errno));
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) == 0) {
      return absl::DeadlineExceededError("no ICMP echo reply from " + ipv4 + " within " +
                                         std::to_string(timeout.count()) + "ms");
    }
    // A raw socket sees every ICMP packet of the host: keep only our reply.
    uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n =
        ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < static_cast<ssize_t>(sizeof(iphdr))) continue;
    const auto* ip = reinterpret_cast<const iphdr*>(buf);
    const size_t header = ip->ihl * 4u;
    if (n < static_cast<ssize_t>(header + sizeof(icmphdr))) continue;
    const auto* reply = reinterpret_cast<const icmphdr*>(buf + header);
    if (from.sin_addr.s_addr == to.sin_addr.s_addr && reply->type == ICMP_ECHOREPLY &&
        ntohs(reply->un.echo.id) == id && ntohs(reply->un.echo.sequence) == sequence) {
      return absl::OkStatus();
    }
  }
}

}  // namespace lab

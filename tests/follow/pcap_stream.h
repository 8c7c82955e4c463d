#pragma once

// What the follow tests share: pcap files written by hand as tcpdump -C -W writes them (in
// rotation, records split across writes, either byte order and timestamp precision), and a
// reader of the follower's output through libpcap, as Wireshark reads a pipe.
#include <fcntl.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wait.h"

namespace followtest {

constexpr uint32_t kEthernet = 1;  // DLT_EN10MB
constexpr uint32_t kDefaultSnaplen = 262144;

struct PcapFormat {
  bool big_endian = false;
  bool nanosecond = false;
  uint32_t snaplen = kDefaultSnaplen;
  uint32_t link_type = kEthernet;
};

inline void put32(std::string& out, uint32_t value, bool big_endian) {
  for (int i = 0; i < 4; ++i) {
    const int shift = big_endian ? 24 - 8 * i : 8 * i;
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}
inline void put16(std::string& out, uint16_t value, bool big_endian) {
  out.push_back(static_cast<char>(big_endian ? value >> 8 : value & 0xff));
  out.push_back(static_cast<char>(big_endian ? value & 0xff : value >> 8));
}

inline std::string globalHeader(const PcapFormat& format) {
  std::string header;
  put32(header, format.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, format.big_endian);
  put16(header, 2, format.big_endian);
  put16(header, 4, format.big_endian);
  put32(header, 0, format.big_endian);  // thiszone
  put32(header, 0, format.big_endian);  // sigfigs
  put32(header, format.snaplen, format.big_endian);
  put32(header, format.link_type, format.big_endian);
  return header;
}

// Packet `seq`: its number in its first 4 bytes (big-endian), then filler: 8 to 44 bytes, so that
// three records always outweigh one (a rewritten file is seen to shrink).
inline std::string packetData(uint32_t seq) {
  std::string data;
  put32(data, seq, true);
  data.append(4 + seq % 37, static_cast<char>('a' + seq % 26));
  return data;
}
inline uint32_t seqOf(const u_char* data) {
  return uint32_t{data[0]} << 24 | uint32_t{data[1]} << 16 | uint32_t{data[2]} << 8 | data[3];
}
// The timestamp of packet `seq`, as seconds and nanoseconds.
inline int64_t secondsOf(uint32_t seq) { return 1'700'000'000 + seq; }
inline int64_t nanosOf(uint32_t seq, bool nanosecond) {
  // A microsecond file carries whole microseconds only.
  return nanosecond ? (seq * 7919 + 13) % 1'000'000'000 : ((seq * 7919 + 13) % 1'000'000) * 1000;
}

inline std::string recordHeader(const PcapFormat& format, uint32_t seq, uint32_t included) {
  std::string header;
  put32(header, static_cast<uint32_t>(secondsOf(seq)), format.big_endian);
  const int64_t nanos = nanosOf(seq, format.nanosecond);
  put32(header, static_cast<uint32_t>(format.nanosecond ? nanos : nanos / 1000), format.big_endian);
  put32(header, included, format.big_endian);
  put32(header, included, format.big_endian);
  return header;
}

inline bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes numbered packets into a ring of files as tcpdump -C -W does: each file opened with
// O_CREAT | O_TRUNC (a wrap-around truncates in place, same inode), its header, its records,
// then the next file. It never overwrites a file the follower may still be reading: before it
// truncates file k it waits until the reader holds every packet of file k+1's previous round
// (the follower has left k), as a real follower must keep within N files of tcpdump.
class RingWriter {
 public:
  struct Options {
    std::vector<std::string> files;
    PcapFormat format;
    int packets_per_file = 4;
    // Every split_every-th packet's record goes out in three writes: 10 bytes of its header,
    // the rest of the header, its data, each after the follower was seen waiting on it.
    int split_every = 0;
    std::function<uint64_t()> received;       // packets the reader holds
    std::function<uint64_t()> partial_waits;  // the follower's FollowStats::partial_record_waits
  };

  explicit RingWriter(Options options)
      : options_(std::move(options)),
        end_of_last_round_(options_.files.size(), 0),
        written_in_file_(options_.files.size(), 0) {}
  ~RingWriter() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Writes `count` more packets; false (with the reason in error()) on a failure or a timeout.
  bool write(int count) {
    for (int i = 0; i < count; ++i) {
      if (fd_ < 0 || written_in_file_[index_] == options_.packets_per_file) {
        if (!openNext()) return false;
      }
      const uint32_t seq = next_seq_++;
      const std::string data = packetData(seq);
      const std::string header =
          recordHeader(options_.format, seq, static_cast<uint32_t>(data.size()));
      const bool split = options_.split_every > 0 && seq % options_.split_every == 0;
      if (split) {
        if (!writeWaiting(header.substr(0, 10)) || !writeWaiting(header.substr(10))) return false;
        if (!writeAll(fd_, data)) return fail("write");
      } else if (!writeAll(fd_, header + data)) {
        return fail("write");
      }
      ++written_in_file_[index_];
      end_of_last_round_[index_] = next_seq_;
      if (first_packet_wait_ && !waitReceived(next_seq_)) return false;
      first_packet_wait_ = false;
    }
    return true;
  }

  // Writes raw bytes into the current file (a corrupt record, say).
  bool writeRaw(const std::string& bytes) { return writeAll(fd_, bytes) || fail("write"); }

  uint32_t written() const { return next_seq_; }
  int currentIndex() const { return index_; }
  const std::string& error() const { return error_; }

 private:
  bool fail(const std::string& what) {
    error_ = what + " failed: " + std::to_string(errno);
    return false;
  }

  bool waitReceived(uint64_t packets) {
    if (!options_.received) return true;
    if (testsupport::waitUntil([&] { return options_.received() >= packets; })) return true;
    error_ = "the reader never got packet " + std::to_string(packets - 1) + " (it has " +
             std::to_string(options_.received()) + ")";
    return false;
  }

  // Writes `bytes` once the follower has looked at the file since the last part.
  bool writeWaiting(const std::string& bytes) {
    const uint64_t before = options_.partial_waits ? options_.partial_waits() : 0;
    if (!writeAll(fd_, bytes)) return fail("write");
    if (!options_.partial_waits) return true;
    if (testsupport::waitUntil([&] { return options_.partial_waits() > before; })) return true;
    error_ = "the follower never waited on a partial record";
    return false;
  }

  bool openNext() {
    const int files = static_cast<int>(options_.files.size());
    if (fd_ >= 0) {
      ::close(fd_);
      index_ = (index_ + 1) % files;
    }
    fd_ = -1;
    // Overwriting: the follower must be past this file (N > 1), or have all of it (N = 1, where
    // it rereads the file from its start once it sees it shrink).
    const int evidence = files == 1 ? index_ : (index_ + 1) % files;
    if (written_in_file_[index_] > 0 && !waitReceived(end_of_last_round_[evidence])) return false;
    fd_ = ::open(options_.files[index_].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return fail("open " + options_.files[index_]);
    // N = 1: the follower sees the file shrink only if it looks before the file outgrows what it
    // held; so the first packet waits for it.
    first_packet_wait_ = files == 1 && written_in_file_[index_] > 0;
    written_in_file_[index_] = 0;
    return writeAll(fd_, globalHeader(options_.format)) || fail("write");
  }

  Options options_;
  std::vector<uint64_t> end_of_last_round_;  // per file: the seq after its last packet so far
  std::vector<int> written_in_file_;         // per file: packets in its current round
  int index_ = 0;
  int fd_ = -1;
  uint32_t next_seq_ = 0;
  bool first_packet_wait_ = false;
  std::string error_;
};

// Reads a pcap stream from a pipe with libpcap on a thread of its own, as Wireshark does with
// `-i -`, keeping every packet's number and timestamp.
class StreamReader {
 public:
  struct Packet {
    uint32_t seq = 0;
    int64_t seconds = 0;
    int64_t nanos = 0;
    uint32_t length = 0;
  };

  // Takes the pipe's read end.
  explicit StreamReader(int fd) : fd_(fd) {
    thread_ = std::thread([this] { read(); });
  }
  ~StreamReader() { join(); }

  // Waits for the end of the stream (the writer closed it) or an error.
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  uint64_t received() const { return received_.load(); }
  bool done() const { return done_.load(); }

  // After join():
  const std::vector<Packet>& packets() const { return packets_; }
  const std::string& error() const { return error_; }
  bool opened() const { return opened_; }
  int linkType() const { return link_type_; }
  bool swapped() const { return swapped_; }
  // The stream's bytes as libpcap parsed them: one global header and each record.
  uint64_t parsedBytes() const { return parsed_bytes_; }

 private:
  void read() {
    FILE* stream = ::fdopen(fd_, "rb");
    char error[PCAP_ERRBUF_SIZE] = "";
    // Nanoseconds whatever the file's precision, so that a microsecond stream compares too.
    pcap_t* pcap =
        stream ? pcap_fopen_offline_with_tstamp_precision(stream, PCAP_TSTAMP_PRECISION_NANO, error)
               : nullptr;
    if (pcap == nullptr) {
      error_ = std::string("pcap_fopen_offline: ") + error;
      if (stream) std::fclose(stream);
      done_ = true;
      return;
    }
    opened_ = true;
    link_type_ = pcap_datalink(pcap);
    swapped_ = pcap_is_swapped(pcap) == 1;
    parsed_bytes_ = 24;
    while (true) {
      pcap_pkthdr* header = nullptr;
      const u_char* data = nullptr;
      const int result = pcap_next_ex(pcap, &header, &data);
      if (result == PCAP_ERROR_BREAK) break;  // the end of the stream
      if (result != 1) {
        error_ = std::string("pcap_next_ex: ") + pcap_geterr(pcap);
        break;
      }
      if (header->caplen < 4) {
        error_ = "a packet of " + std::to_string(header->caplen) + " bytes";
        break;
      }
      packets_.push_back(Packet{.seq = seqOf(data),
                                .seconds = header->ts.tv_sec,
                                .nanos = header->ts.tv_usec,  // nanoseconds, as asked
                                .length = header->caplen});
      parsed_bytes_ += 16 + header->caplen;
      ++received_;
    }
    pcap_close(pcap);  // closes the stream, and the fd with it
    done_ = true;
  }

  const int fd_;
  std::thread thread_;
  std::atomic<uint64_t> received_{0};
  std::atomic<bool> done_{false};
  std::vector<Packet> packets_;
  std::string error_;
  bool opened_ = false;
  int link_type_ = -1;
  bool swapped_ = false;
  uint64_t parsed_bytes_ = 0;
};

// The numbers of `packets`, in order, to compare with the packets written.
inline std::vector<uint32_t> seqsOf(const std::vector<StreamReader::Packet>& packets) {
  std::vector<uint32_t> seqs;
  for (const auto& packet : packets) seqs.push_back(packet.seq);
  return seqs;
}

// The packet numbers from `from` up to `to`, `to` excluded.
inline std::vector<uint32_t> range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> seqs;
  for (uint32_t seq = from; seq < to; ++seq) seqs.push_back(seq);
  return seqs;
}

}  // namespace followtest

#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace base {

// Writes the Prometheus text exposition format (version 0.0.4), family by family:
//   text.family("x_total", "counter", "What x counts.");
//   text.sample("x_total", "method=\"Version\"", 3);
// Label values are written as given: callers pass names and values that need no escaping.
class PrometheusText {
 public:
  // The # HELP and # TYPE lines that start a family.
  PrometheusText& family(std::string_view name, std::string_view type, std::string_view help) {
    append("# HELP ", name, " ", help, "\n");
    append("# TYPE ", name, " ", type, "\n");
    return *this;
  }

  PrometheusText& sample(std::string_view name, std::string_view labels, uint64_t value) {
    return line(name, labels, std::to_string(value));
  }
  // Every digit of a double: a sum that grows for the whole life of the process, and rate()
  // over it, need them all, not a stream's default 6.
  PrometheusText& sample(std::string_view name, std::string_view labels, double value) {
    char buffer[32];
    return line(name, labels,
                std::string_view(
                    buffer, std::to_chars(buffer, buffer + sizeof(buffer), value).ptr - buffer));
  }

  // A family of one sample without labels.
  PrometheusText& single(std::string_view name, std::string_view type, std::string_view help,
                         uint64_t value) {
    return family(name, type, help).sample(name, "", value);
  }

  const std::string& text() const { return text_; }

 private:
  PrometheusText& line(std::string_view name, std::string_view labels, std::string_view value) {
    if (labels.empty()) {
      append(name, " ", value, "\n");
    } else {
      append(name, "{", labels, "} ", value, "\n");
    }
    return *this;
  }
  template <typename... Parts>
  void append(const Parts&... parts) {
    (text_.append(parts), ...);
  }

  std::string text_;
};

}  // namespace base

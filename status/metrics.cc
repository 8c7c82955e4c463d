#include "status/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/prometheus_text.h"

namespace status {
namespace {

// Kubernetes names (DNS-1123 labels and subdomains) need no escaping in a label value.
std::string podLabels(const capture::CaptureStatus& c) {
  return absl::StrCat("namespace=\"", c.pod_namespace, "\",pod=\"", c.pod_name, "\"");
}

// tcpdump's counts: per capture (labelled with its Pod; a series ends with its capture, and
// starts again from 0 with a new tcpdump of it, which rate() takes as a counter reset) and
// added up over every capture since the controller started.
void packetFamilies(const MetricsSnapshot& m, base::PrometheusText& text) {
  struct Count {
    const char* name;
    const char* help;
    uint64_t capture::TcpdumpCounts::*field;
  };
  const Count counts[] = {
      {"packets_captured_total", "Packets tcpdump wrote to the capture files.",
       &capture::TcpdumpCounts::captured},
      {"packets_received_by_filter_total", "Packets that matched the capture's filter.",
       &capture::TcpdumpCounts::received_by_filter},
      {"packets_dropped_by_kernel_total",
       "Packets the kernel dropped because tcpdump's buffer was full: missing from the files.",
       &capture::TcpdumpCounts::dropped_by_kernel},
      {"packets_dropped_by_interface_total",
       "Packets the network interface or its driver dropped (when it reports them).",
       &capture::TcpdumpCounts::dropped_by_interface},
  };
  for (const Count& count : counts) {
    text.single(absl::StrCat("capture_controller_", count.name), "counter",
                absl::StrCat(count.help, " Every capture, since the controller started."),
                m.captures.packets.*count.field);
    const std::string name = absl::StrCat("capture_controller_capture_", count.name);
    text.family(name, "counter",
                absl::StrCat(count.help, " Per capture; a new tcpdump counts from 0."));
    for (const capture::CaptureStatus& c : m.capture_list) {
      if (!c.counts) continue;
      text.sample(name, podLabels(c), (*c.counts).*count.field);
    }
  }
  const std::string bytes = "capture_controller_capture_bytes_on_disk";
  text.family(bytes, "gauge", "What the capture's files hold, as of the last resync.");
  for (const capture::CaptureStatus& c : m.capture_list) {
    text.sample(bytes, podLabels(c), c.bytes_on_disk);
  }
}

}  // namespace

std::string prometheusText(const MetricsSnapshot& m) {
  struct Family {
    const char* name;  // after the capture_controller_ prefix
    const char* type;
    const char* help;
    uint64_t value;
  };
  const Family families[] = {
      {"captures_active", "gauge", "Captures whose tcpdump runs now.",
       static_cast<uint64_t>(std::max<int64_t>(0, m.captures.active))},
      {"captures_started_total", "counter", "tcpdump launches, restarts included.",
       m.captures.started},
      {"captures_stopped_total", "counter", "Captures ended and their files deleted.",
       m.captures.stopped},
      {"captures_failed_total", "counter",
       "Failed launches, failed sandbox look-ups and tcpdump exits nobody asked for.",
       m.captures.failed},
      {"capture_restarts_total", "counter",
       "Launches that replaced an earlier tcpdump of the same capture.", m.captures.restarts},
      {"informer_synced", "gauge", "1 once the first list of this node's Pods arrived.",
       m.informer_synced ? 1u : 0u},
      {"pod_watch_reconnects_total", "counter", "Pod watches opened after the first.",
       m.informer.watch_reconnects},
      {"pod_relists_total", "counter",
       "Pod lists after the first (410 Gone, or a watch stream that could not be trusted).",
       m.informer.relists},
      {"pod_watch_events_total", "counter",
       "Pod watch events received (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
       m.informer.events_received},
      {"events_posted_total", "counter", "Kubernetes Events created.", m.events.created},
      {"events_aggregated_total", "counter",
       "Repeats of a recent Event, and similar Events past the aggregation threshold, counted "
       "on one Event instead of posted anew.",
       m.events.aggregated},
      {"events_dropped_total", "counter", "Events dropped because the queue was full.",
       m.events.dropped_queue_full},
      {"events_spam_dropped_total", "counter",
       "Events dropped by the per-object rate limit (25, then one per 5 minutes by default).",
       m.events.dropped_spam},
      {"events_failed_total", "counter",
       "Events given up after retries, or refused by the API server.", m.events.failed},
      {"runtime_reachable", "gauge",
       "1 when the container runtime answered its last CRI Version call.",
       m.runtime_reachable ? 1u : 0u},
      {"heap_in_use_bytes", "gauge",
       "Memory the controller allocated and has not freed: what its RSS comes back to once the "
       "allocator hands free pages back (every 30 s).",
       m.heap_bytes},
  };
  base::PrometheusText text;
  for (const Family& f : families) {
    text.single(std::string("capture_controller_") + f.name, f.type, f.help, f.value);
  }
  packetFamilies(m, text);
  return text.text() + m.cri_text;
}

}  // namespace status

#include "status/metrics.h"

#include <algorithm>

#include "base/prometheus_text.h"

namespace status {

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
  return text.text() + m.cri_text;
}

}  // namespace status

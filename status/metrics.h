#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "capture/reconciler.h"
#include "k8s/event_recorder.h"
#include "k8s/pod_informer.h"

namespace status {

// One scrape's worth of counters, gathered from the components.
struct MetricsSnapshot {
  capture::CaptureStats captures;
  std::vector<capture::CaptureStatus> capture_list;  // for the per-capture series
  k8s::PodInformerStats informer;
  k8s::EventRecorderStats events;
  bool informer_synced = false;
  bool runtime_reachable = false;
  uint64_t heap_bytes = 0;  // allocated and not freed (glibc mallinfo2: uordblks + hblkhd)
  std::string cri_text;     // cri::RpcStats::prometheusText("capture_controller_cri")
};
std::string prometheusText(const MetricsSnapshot& metrics);

}  // namespace status

#pragma once

#include <string>
#include <string_view>

#include "k8s/pod.h"

namespace k8s {

enum class EventType { kNormal, kWarning };

// core/v1 ObjectReference: what an Event is about.
struct ObjectReference {
  std::string kind = "Pod";
  std::string api_version = "v1";
  std::string namespace_;
  std::string name;
  std::string uid;

  bool operator==(const ObjectReference&) const = default;
};

inline ObjectReference referenceTo(const Pod& pod) {
  return ObjectReference{"Pod", "v1", pod.namespace_, pod.name, pod.uid};
}

// Where user-facing outcomes go (`kubectl describe pod`). emit() never blocks on the network:
// the real sink queues, aggregates repeats and posts Events in the background.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void emit(const ObjectReference& object, EventType type, std::string_view reason,
                    std::string_view message) = 0;
};

}  // namespace k8s

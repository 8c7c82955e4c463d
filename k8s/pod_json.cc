#include "k8s/pod_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace k8s {
namespace {

using Json = nlohmann::json;

// Where the reader is in the document. Only these places hold fields the client keeps; every
// other subtree is kSkip, read and forgotten.
enum class Place {
  kRoot,
  kListMetadata,  // root.metadata
  kItems,         // root.items
  kObject,        // root.object, or an element of root.items
  kMetadata,      // <object>.metadata
  kAnnotations,   // <object>.metadata.annotations
  kSpec,          // <object>.spec
  kStatus,        // <object>.status
  kSkip,
};

// A SAX handler for nlohmann::json::sax_parse.
class DocumentReader {
 public:
  DocumentReader(const PodParseOptions& options, ParsedDocument& out)
      : options_(options), out_(out) {}

  bool start_object(std::size_t) {
    if (!notAnAnnotation()) return false;
    places_.push_back(childPlace(/*is_object=*/true));
    if (places_.back() == Place::kObject) out_.objects.emplace_back();
    return true;
  }
  bool end_object() { return pop(); }
  bool start_array(std::size_t) {
    if (!notAnAnnotation()) return false;
    places_.push_back(childPlace(/*is_object=*/false));
    return true;
  }
  bool end_array() { return pop(); }
  bool key(Json::string_t& name) {
    key_.swap(name);
    return true;
  }

  // Copies, never swaps: the parser's buffer keeps the capacity of the longest string it has
  // read (kilobytes of last-applied-configuration), which a cached Pod must not inherit.
  bool string(Json::string_t& value) {
    switch (here()) {
      case Place::kRoot:
        if (key_ == "type") out_.type.assign(value);
        if (key_ == "kind") out_.kind.assign(value);
        break;
      case Place::kListMetadata:
        if (key_ == "resourceVersion") out_.resource_version.assign(value);
        if (key_ == "continue") out_.continue_token.assign(value);
        break;
      case Place::kObject:
        if (key_ == "kind") object().kind.assign(value);
        if (key_ == "reason") object().status_reason.assign(value);
        if (key_ == "message") object().status_message.assign(value);
        break;
      case Place::kMetadata: {
        Pod& pod = object().pod;
        if (key_ == "uid") pod.uid.assign(value);
        if (key_ == "name") pod.name.assign(value);
        if (key_ == "namespace") pod.namespace_.assign(value);
        if (key_ == "resourceVersion") pod.resource_version.assign(value);
        if (key_ == "creationTimestamp") pod.creation_timestamp.assign(value);
        if (key_ == "deletionTimestamp") pod.terminating = true;
        break;
      }
      case Place::kAnnotations:
        if (!options_.annotation_keys || options_.annotation_keys->count(key_) != 0) {
          object().pod.annotations.insert_or_assign(key_, value);
        }
        break;
      case Place::kSpec:
        if (key_ == "nodeName") object().pod.node_name.assign(value);
        break;
      case Place::kStatus:
        if (key_ == "phase") object().pod.phase.assign(value);
        break;
      default:
        break;
    }
    return true;
  }
  bool boolean(bool value) {
    if (here() == Place::kSpec && key_ == "hostNetwork") object().pod.host_network = value;
    return notAnAnnotation();
  }
  bool number_integer(Json::number_integer_t value) {
    if (here() == Place::kObject && key_ == "code") object().status_code = static_cast<int>(value);
    return notAnAnnotation();
  }
  bool number_unsigned(Json::number_unsigned_t value) {
    return number_integer(static_cast<Json::number_integer_t>(value));
  }
  bool number_float(Json::number_float_t, const Json::string_t&) { return notAnAnnotation(); }
  bool null() { return notAnAnnotation(); }
  bool binary(Json::binary_t&) { return true; }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) {
    error_ = absl::DataLossError(absl::StrCat("malformed JSON at byte ", position));
    return false;
  }

  const absl::Status& error() const { return error_; }

 private:
  Place here() const { return places_.empty() ? Place::kSkip : places_.back(); }
  ParsedObject& object() { return out_.objects.back(); }

  Place childPlace(bool is_object) const {
    if (places_.empty()) return is_object ? Place::kRoot : Place::kSkip;
    switch (places_.back()) {
      case Place::kRoot:
        if (key_ == "object" && is_object) return Place::kObject;
        if (key_ == "items" && !is_object) return Place::kItems;
        if (key_ == "metadata" && is_object) return Place::kListMetadata;
        return Place::kSkip;
      case Place::kItems:
        return is_object ? Place::kObject : Place::kSkip;
      case Place::kObject:
        if (!is_object) return Place::kSkip;
        if (key_ == "metadata") return Place::kMetadata;
        if (key_ == "spec") return Place::kSpec;
        if (key_ == "status") return Place::kStatus;
        return Place::kSkip;
      case Place::kMetadata:
        if (key_ == "annotations" && is_object) return Place::kAnnotations;
        return Place::kSkip;
      default:
        return Place::kSkip;
    }
  }

  bool pop() {
    places_.pop_back();
    return true;
  }

  // Annotation values are strings; anything else in there makes the Pod unreadable.
  bool notAnAnnotation() {
    if (here() != Place::kAnnotations) return true;
    error_ = absl::InvalidArgumentError(absl::StrCat("annotation ", key_, " is not a string"));
    return false;
  }

  const PodParseOptions& options_;
  ParsedDocument& out_;
  std::vector<Place> places_;
  std::string key_;
  absl::Status error_;
};

}  // namespace

absl::StatusOr<ParsedDocument> parseDocument(std::string_view json,
                                             const PodParseOptions& options) {
  ParsedDocument document;
  DocumentReader reader(options, document);
  const bool ok = Json::sax_parse(json.begin(), json.end(), &reader);
  if (!ok || !reader.error().ok()) {
    if (!reader.error().ok()) return reader.error();
    return absl::DataLossError("malformed JSON");
  }
  return document;
}

absl::Status checkPodIdentity(const Pod& pod) {
  if (pod.uid.empty() || pod.namespace_.empty() || pod.name.empty() ||
      pod.resource_version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Pod without uid, namespace, name or resourceVersion: ", pod.namespace_, "/", pod.name));
  }
  return absl::OkStatus();
}

}  // namespace k8s

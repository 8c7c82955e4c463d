#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "cmd/capture-controller/commands.h"
#include "cmd/capture-controller/controller_client.h"
#include "cmd/capture-controller/flags.h"
#include "status/captures_view.h"

namespace cmd {
namespace {

// The /captures document with only the capture of `pod` (NAMESPACE/NAME); NotFound when this
// node has none.
absl::StatusOr<nlohmann::json> onlyThePod(const nlohmann::json& document, const std::string& pod) {
  const size_t slash = pod.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == pod.size()) {
    return absl::InvalidArgumentError("--pod wants NAMESPACE/NAME, not \"" + pod + "\"");
  }
  try {
    for (const nlohmann::json& capture : document.at("captures")) {
      if (capture.at("podNamespace") == pod.substr(0, slash) &&
          capture.at("podName") == pod.substr(slash + 1)) {
        return nlohmann::json{{"captures", nlohmann::json::array({capture})}};
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(std::string("unexpected /captures document: ") + e.what());
  }
  return absl::NotFoundError("no capture of " + pod + " on this node");
}

}  // namespace

int capturesCommand() {
  auto controller = ControllerClient::fromHttpAddress(FLAGS_http_address);
  if (!controller.ok()) {
    std::cerr << controller.status().message() << "\n";
    return 2;
  }
  auto body = controller->getCaptures();
  if (!body.ok()) {
    std::cerr << body.status().message() << "\n";
    return 1;
  }
  if (FLAGS_paths && FLAGS_pod.empty()) {
    std::cerr << "--paths lists one capture's files: give --pod NAMESPACE/NAME\n";
    return 2;
  }
  if (FLAGS_json && FLAGS_pod.empty()) {
    std::cout << *body;
    return 0;
  }
  nlohmann::json document = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_discarded() && !FLAGS_pod.empty()) {
    // One Pod's capture: what the kubectl plugin (plugin/kubectl-capture) asks for.
    auto selected = onlyThePod(document, FLAGS_pod);
    if (!selected.ok()) {
      std::cerr << selected.status().message() << "\n";
      return 1;
    }
    if (FLAGS_paths) {
      for (const nlohmann::json& file : selected->at("captures").at(0).at("filesOnDisk")) {
        std::cout << file.at("path").get<std::string>() << "\n";
      }
      return 0;
    }
    if (FLAGS_json) {
      std::cout << selected->dump() << "\n";
      return 0;
    }
    document = *std::move(selected);
  }
  auto table = document.is_discarded()
                   ? absl::StatusOr<std::string>(absl::InvalidArgumentError("not JSON"))
                   : status::capturesTable(document);
  if (!table.ok()) {
    std::cerr << controller->where() << "/captures: " << table.status().message() << "\n";
    return 1;
  }
  std::cout << *table;
  return 0;
}

}  // namespace cmd

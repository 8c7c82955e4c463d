#include "cmd/capture-controller/controller_client.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "status/status_server.h"

namespace cmd {

ControllerClient::ControllerClient(std::string host, int port)
    : host_(std::move(host)), port_(port), where_(absl::StrCat(host_, ":", port_)) {}

absl::StatusOr<ControllerClient> ControllerClient::fromHttpAddress(
    const std::string& http_address) {
  auto address = status::parseHostPort(http_address);
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--http-address: ", address.status().message()));
  }
  const bool any = address->host.empty() || address->host == "0.0.0.0" || address->host == "::";
  return ControllerClient(any ? "127.0.0.1" : address->host, address->port);
}

absl::StatusOr<std::string> ControllerClient::getCaptures(std::chrono::seconds read_timeout) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(2);
  client.set_read_timeout(read_timeout.count());
  const httplib::Result response = client.Get("/captures");
  if (!response) {
    return absl::UnavailableError(absl::StrCat(
        "the controller is not answering at ", where_, " (", httplib::to_string(response.error()),
        "): is it running, and is --http-address its address?"));
  }
  if (response->status != 200) {
    return absl::InternalError(
        absl::StrCat(where_, "/captures answered HTTP ", response->status, ": ", response->body));
  }
  return response->body;
}

}  // namespace cmd

#include <httplib.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cmd/capture-controller/commands.h"
#include "cmd/capture-controller/flags.h"
#include "status/captures_view.h"
#include "status/status_server.h"

namespace cmd {

int capturesCommand() {
  auto address = status::parseHostPort(FLAGS_http_address);
  if (!address.ok()) {
    std::cerr << "--http-address: " << address.status().message() << "\n";
    return 2;
  }
  const std::string host =
      address->host.empty() || address->host == "0.0.0.0" || address->host == "::" ? "127.0.0.1"
                                                                                   : address->host;
  const std::string where = absl::StrCat(host, ":", address->port);
  httplib::Client client(host, address->port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  const httplib::Result response = client.Get("/captures");
  if (!response) {
    std::cerr << "the controller is not answering at " << where << " ("
              << httplib::to_string(response.error())
              << "): is it running, and is --http-address its address?\n";
    return 1;
  }
  if (response->status != 200) {
    std::cerr << where << "/captures answered HTTP " << response->status << ": " << response->body
              << "\n";
    return 1;
  }
  if (FLAGS_json) {
    std::cout << response->body;
    return 0;
  }
  const auto document = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  auto table = document.is_discarded()
                   ? absl::StatusOr<std::string>(absl::InvalidArgumentError("not JSON"))
                   : status::capturesTable(document);
  if (!table.ok()) {
    std::cerr << where << "/captures: " << table.status().message() << "\n";
    return 1;
  }
  std::cout << *table;
  return 0;
}

}  // namespace cmd

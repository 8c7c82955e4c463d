#include "tests/fakeapi/test_certs.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace fakeapi {

absl::StatusOr<int> runForExitStatus(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", argv[0], ": ", strerror(error)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

absl::Status runProgram(const std::vector<std::string>& argv) {
  auto exit_status = runForExitStatus(argv, /*quiet=*/true);
  if (!exit_status.ok()) return exit_status.status();
  if (*exit_status != 0) {
    return absl::InternalError(absl::StrCat("failed: ", absl::StrJoin(argv, " ")));
  }
  return absl::OkStatus();
}

namespace {

absl::Status makeCa(const std::string& dir, const std::string& name) {
  return runProgram({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                     "-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".crt"});
}

// OpenSSL 3's `req -x509 -CA` signs with the CA in one step.
absl::Status makeLeaf(const std::string& dir, const std::string& ca, const std::string& name,
                      const std::string& subject, const std::vector<std::string>& extensions) {
  std::vector<std::string> argv = {"openssl",
                                   "req",
                                   "-x509",
                                   "-newkey",
                                   "ec",
                                   "-pkeyopt",
                                   "ec_paramgen_curve:prime256v1",
                                   "-nodes",
                                   "-days",
                                   "2",
                                   "-subj",
                                   subject,
                                   "-CA",
                                   dir + "/" + ca + ".crt",
                                   "-CAkey",
                                   dir + "/" + ca + ".key",
                                   "-keyout",
                                   dir + "/" + name + ".key",
                                   "-out",
                                   dir + "/" + name + ".crt"};
  for (const std::string& extension : extensions) {
    argv.push_back("-addext");
    argv.push_back(extension);
  }
  return runProgram(argv);
}

}  // namespace

absl::StatusOr<TestCertificates> generateTestCertificates(
    const std::string& dir, const std::vector<std::string>& extra_ips) {
  std::string names = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  for (const std::string& ip : extra_ips) names += ",IP:" + ip;
  for (const char* ca : {"ca", "other-ca"}) {
    if (auto status = makeCa(dir, ca); !status.ok()) return status;
  }
  for (const auto& [ca, name] :
       {std::pair{"ca", "server"}, std::pair{"other-ca", "other-server"}}) {
    if (auto status =
            makeLeaf(dir, ca, name, "/CN=fake-apiserver",
                     {names, "basicConstraints=critical,CA:FALSE", "extendedKeyUsage=serverAuth"});
        !status.ok()) {
      return status;
    }
  }
  if (auto status = makeLeaf(dir, "ca", "client", "/O=system:masters/CN=capture-controller",
                             {"basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"});
      !status.ok()) {
    return status;
  }
  return TestCertificates{dir + "/ca.crt",           dir + "/server.crt",
                          dir + "/server.key",       dir + "/client.crt",
                          dir + "/client.key",       dir + "/other-ca.crt",
                          dir + "/other-server.crt", dir + "/other-server.key"};
}

}  // namespace fakeapi

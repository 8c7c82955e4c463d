// What kind/up.sh applies: controller_manifests IMAGE IMAGE_ID of kind/common.sh, run with the
// real kubectl of Debian trixie (its kustomize renders deploy/kustomization.yaml), which the
// ship.fetch_kubectl fixture unpacks into the build tree. A missing kubectl is a failure.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "tests/ship/repo_files.h"
#include "tests/support/files.h"

namespace ship {
namespace {

constexpr char kImageId[] =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
constexpr char kOtherImageId[] =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";
constexpr char kImageIdAnnotation[] = "capture-controller/image-id";

struct Rendered {
  int exit_code = -1;
  std::string out;                          // stdout: the manifests
  std::string err;                          // stderr
  std::vector<std::string> left_in_tmpdir;  // what the run left in its TMPDIR
};

// `controller_manifests IMAGE IMAGE_ID` in a bash that sourced kind/common.sh, with `kubectl`
// first on PATH and a TMPDIR of its own.
Rendered render(const std::string& kubectl, const std::string& image, const std::string& id) {
  const testsupport::TempDir tmp("kind-deploy-test");
  const testsupport::TempDir tmpdir_of_run("kind-deploy-test-tmpdir");
  const std::string err_file = tmp.file("stderr");
  const std::string script =
      "source " + shellQuote(repoPath("kind/common.sh")) + " && controller_manifests \"$1\" \"$2\"";
  // Braces: runCommand sends the group's stderr to stdout, but the command's goes to the file.
  const std::string command =
      "{ PATH=" + shellQuote(std::filesystem::path(kubectl).parent_path().string()) +
      ":\"$PATH\" TMPDIR=" + shellQuote(tmpdir_of_run.path()) + " bash -c " + shellQuote(script) +
      " kind_deploy_test " + shellQuote(image) + " " + shellQuote(id) + " 2>" +
      shellQuote(err_file) + "; }";
  const CommandResult result = runCommand(command);
  Rendered rendered;
  rendered.exit_code = result.exit_code;
  rendered.out = result.output;
  rendered.err = testsupport::readFile(err_file);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(tmpdir_of_run.path(), error)) {
    rendered.left_in_tmpdir.push_back(entry.path().filename().string());
  }
  return rendered;
}

std::vector<YAML::Node> parseAll(const std::string& yaml, const std::string& what) {
  try {
    return YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << what << " is not YAML: " << e.what() << "\n" << yaml;
    return {};
  }
}

std::string str(const YAML::Node& node) {
  return node && node.IsScalar() ? node.as<std::string>() : "";
}

// node[k1][k2]...; an undefined node when any key is missing (yaml-cpp throws on a subscript of
// an undefined node, and a non-const subscript inserts the key).
YAML::Node at(const YAML::Node& node, std::initializer_list<std::string> keys) {
  YAML::Node current = node;
  for (const std::string& key : keys) {
    const YAML::Node& parent = current;
    if (!parent.IsMap() || !parent[key]) return YAML::Node(YAML::NodeType::Undefined);
    current.reset(parent[key]);
  }
  return current;
}

std::string describe(const YAML::Node& object) {
  if (!object.IsMap()) return "(not an object: " + YAML::Dump(object) + ")";
  return str(at(object, {"kind"})) + " " + str(at(object, {"metadata", "namespace"})) + "/" +
         str(at(object, {"metadata", "name"}));
}

// The documents of `kind` named `name` (in `ns`, "" for cluster-scoped objects).
std::vector<YAML::Node> objectsOf(const std::vector<YAML::Node>& docs, const std::string& kind,
                                  const std::string& ns, const std::string& name) {
  std::vector<YAML::Node> found;
  for (const YAML::Node& doc : docs) {
    if (str(at(doc, {"kind"})) == kind && str(at(doc, {"metadata", "name"})) == name &&
        str(at(doc, {"metadata", "namespace"})) == ns) {
      found.push_back(doc);
    }
  }
  return found;
}

// A scalar as what it means: a quoted scalar is a string, a plain one resolves by YAML's core
// schema, so that `0` and `"0"` differ while a change of quoting style alone does not.
std::string scalarMeaning(const YAML::Node& node) {
  const std::string& value = node.Scalar();
  if (node.Tag() != "?") return (node.Tag() == "!" ? "string " : node.Tag() + " ") + value;
  static const std::regex null_re("~|null|Null|NULL|");
  static const std::regex bool_re("true|True|TRUE|false|False|FALSE");
  static const std::regex int_re("[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+");
  static const std::regex float_re(
      R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))");
  if (std::regex_match(value, null_re)) return "null";
  if (std::regex_match(value, bool_re)) return "bool " + value;
  if (std::regex_match(value, int_re)) return "int " + value;
  if (std::regex_match(value, float_re)) return "float " + value;
  return "string " + value;
}

// Every place where `expected` and `actual` differ, as "path: expected vs actual" lines; none
// when they hold the same data (key order, styles and comments aside).
void differences(const YAML::Node& expected, const YAML::Node& actual, const std::string& path,
                 std::vector<std::string>& found) {
  const std::string where = path.empty() ? "(document)" : path;
  if (expected.Type() != actual.Type()) {
    found.push_back(where + ": " + YAML::Dump(expected) + " vs " + YAML::Dump(actual));
    return;
  }
  if (expected.IsScalar()) {
    if (scalarMeaning(expected) != scalarMeaning(actual)) {
      found.push_back(where + ": " + scalarMeaning(expected) + " vs " + scalarMeaning(actual));
    }
  } else if (expected.IsSequence()) {
    if (expected.size() != actual.size()) {
      found.push_back(where + ": " + std::to_string(expected.size()) + " items vs " +
                      std::to_string(actual.size()));
      return;
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      differences(expected[i], actual[i], path + "[" + std::to_string(i) + "]", found);
    }
  } else if (expected.IsMap()) {
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const auto& item : expected) {
      const std::string key = item.first.Scalar();
      if (!actual[key]) {
        found.push_back(prefix + key + ": missing");
      } else {
        differences(item.second, actual[key], prefix + key, found);
      }
    }
    for (const auto& item : actual) {
      if (!expected[item.first.Scalar()]) found.push_back(prefix + item.first.Scalar() + ": added");
    }
  }
}

std::vector<std::string> differences(const YAML::Node& expected, const YAML::Node& actual) {
  std::vector<std::string> found;
  differences(expected, actual, "", found);
  return found;
}

std::string lines(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += "\n  " + item;
  return text;
}

// "Kind namespace/name" of every document, sorted.
std::vector<std::string> describeAll(const std::vector<YAML::Node>& docs) {
  std::vector<std::string> described;
  for (const YAML::Node& doc : docs) described.push_back(describe(doc));
  std::sort(described.begin(), described.end());
  return described;
}

// The one DaemonSet of deploy/daemonset.yaml.
YAML::Node manifestDaemonSet() {
  const std::vector<YAML::Node> docs =
      parseAll(readRepoFile("deploy/daemonset.yaml"), "deploy/daemonset.yaml");
  const std::vector<YAML::Node> found =
      objectsOf(docs, "DaemonSet", "kube-system", "capture-controller");
  if (found.size() != 1) {
    ADD_FAILURE() << "deploy/daemonset.yaml: expected one DaemonSet kube-system/capture-controller";
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return found.front();
}

// The container named capture-controller of a DaemonSet; undefined when there is not one.
YAML::Node controllerContainer(const YAML::Node& daemon_set) {
  YAML::Node found(YAML::NodeType::Undefined);
  int count = 0;
  const YAML::Node containers = at(daemon_set, {"spec", "template", "spec", "containers"});
  if (!containers.IsSequence()) return found;
  for (const YAML::Node& container : containers) {
    if (str(container["name"]) == "capture-controller") {
      found.reset(container);
      ++count;
    }
  }
  return count == 1 ? found : YAML::Node(YAML::NodeType::Undefined);
}

std::string manifestImage() { return str(controllerContainer(manifestDaemonSet())["image"]); }

struct ImageCase {
  std::string name;      // the test's name
  std::string image;     // IMAGE
  std::string rendered;  // the image the DaemonSet's container gets
};

// gtest prints a case as its image.
void PrintTo(const ImageCase& c, std::ostream* os) { *os << c.image; }

class ControllerManifests : public ::testing::TestWithParam<ImageCase> {
 protected:
  void SetUp() override {
    kubectl_ = fixtureKubectl();
    ASSERT_FALSE(kubectl_.empty())
        << "no kubectl under " << KUBECTL_DEBS_DIR
        << "/kubectl_*/usr/bin: the fixture ship.fetch_kubectl "
           "(tests/tools/debian-package.sh trixie kubectl) should have unpacked it";
  }

  // controller_manifests for this case's image and `id`; fails the test unless it succeeds
  // quietly, leaves nothing behind and prints YAML.
  std::vector<YAML::Node> renderDocs(const std::string& id, std::string* text = nullptr) {
    const Rendered rendered = render(kubectl_, GetParam().image, id);
    EXPECT_EQ(rendered.exit_code, 0) << rendered.err;
    EXPECT_EQ(rendered.err, "") << "controller_manifests wrote to stderr (with " << kubectl_ << ")";
    EXPECT_TRUE(rendered.left_in_tmpdir.empty())
        << "left in TMPDIR:" << lines(rendered.left_in_tmpdir);
    if (text != nullptr) *text = rendered.out;
    return parseAll(rendered.out, "the output of controller_manifests");
  }

  // The one DaemonSet kube-system/capture-controller of `docs`.
  YAML::Node daemonSetOf(const std::vector<YAML::Node>& docs) {
    const std::vector<YAML::Node> found =
        objectsOf(docs, "DaemonSet", "kube-system", "capture-controller");
    EXPECT_EQ(found.size(), 1u) << "DaemonSets kube-system/capture-controller in the output, which "
                                   "holds:"
                                << lines(describeAll(docs));
    return found.size() == 1 ? found.front() : YAML::Node(YAML::NodeType::Undefined);
  }

  std::string kubectl_;
};

TEST(ControllerManifestsCases, TheManifestsOwnImageCaseIsDaemonsetYamlsImage) {
  // Otherwise the case "ImageOfTheManifest" would no longer test the image left unchanged.
  EXPECT_EQ(manifestImage(), "capture-controller:dev");
}

TEST_P(ControllerManifests, PrintsNothingOnStderrAndLeavesNoTemporaryDirectory) {
  const std::vector<YAML::Node> docs = renderDocs(kImageId);
  EXPECT_FALSE(docs.empty());
}

TEST_P(ControllerManifests, RendersOneDaemonSetWithTheImageAndTheImageIdAnnotation) {
  const std::vector<YAML::Node> docs = renderDocs(kImageId);
  const YAML::Node ds = daemonSetOf(docs);
  ASSERT_TRUE(ds);
  const YAML::Node container = controllerContainer(ds);
  ASSERT_TRUE(container) << "no single container capture-controller in\n" << YAML::Dump(ds);
  EXPECT_EQ(str(container["image"]), GetParam().rendered);
  EXPECT_EQ(str(at(ds, {"spec", "template", "metadata", "annotations", kImageIdAnnotation})),
            kImageId)
      << YAML::Dump(at(ds, {"spec", "template", "metadata"}));
}

TEST_P(ControllerManifests, KeepsEveryOtherFieldOfDaemonsetYaml) {
  const YAML::Node ds = daemonSetOf(renderDocs(kImageId));
  ASSERT_TRUE(ds);
  // The rendered DaemonSet with the manifest's image and without the annotation.
  YAML::Node restored = YAML::Clone(ds);
  YAML::Node container = controllerContainer(restored);
  ASSERT_TRUE(container);
  container["image"] = manifestImage();
  YAML::Node metadata = at(restored, {"spec", "template", "metadata"});
  ASSERT_TRUE(at(metadata, {"annotations"}).IsMap()) << "no annotations:\n" << YAML::Dump(ds);
  metadata["annotations"].remove(kImageIdAnnotation);
  if (metadata["annotations"].size() == 0) metadata.remove("annotations");
  const std::vector<std::string> diff = differences(manifestDaemonSet(), restored);
  EXPECT_TRUE(diff.empty()) << "deploy/daemonset.yaml vs the rendered DaemonSet:" << lines(diff);
}

TEST_P(ControllerManifests, RendersTheObjectsOfRbacYamlUnchangedAndNothingElse) {
  const std::vector<YAML::Node> docs = renderDocs(kImageId);
  const std::vector<YAML::Node> rbac = parseAll(readRepoFile("deploy/rbac.yaml"), "rbac.yaml");
  std::vector<std::string> kinds;
  std::vector<YAML::Node> expected_objects = rbac;
  for (const YAML::Node& object : rbac) {
    kinds.push_back(str(at(object, {"kind"})));
    const std::vector<YAML::Node> found =
        objectsOf(docs, str(at(object, {"kind"})), str(at(object, {"metadata", "namespace"})),
                  str(at(object, {"metadata", "name"})));
    if (found.size() != 1) {
      ADD_FAILURE() << describe(object) << ": " << found.size() << " in the output";
      continue;
    }
    const std::vector<std::string> diff = differences(object, found.front());
    EXPECT_TRUE(diff.empty()) << "deploy/rbac.yaml vs the rendered " << describe(object) << ":"
                              << lines(diff);
  }
  std::sort(kinds.begin(), kinds.end());
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"ClusterRole", "ClusterRoleBinding", "ServiceAccount"}));
  // Each once, and nothing else (an empty document included).
  expected_objects.push_back(manifestDaemonSet());
  EXPECT_EQ(describeAll(docs), describeAll(expected_objects));
}

TEST_P(ControllerManifests, SameIdRendersTheSameTextAndAnotherIdChangesOnlyTheAnnotation) {
  std::string first, again, other;
  const std::vector<YAML::Node> docs = renderDocs(kImageId, &first);
  renderDocs(kImageId, &again);
  EXPECT_EQ(first, again) << "an unchanged build would roll out again";

  const std::vector<YAML::Node> other_docs = renderDocs(kOtherImageId, &other);
  ASSERT_EQ(docs.size(), other_docs.size());
  std::vector<std::string> diff;
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::vector<std::string> one = differences(docs[i], other_docs[i]);
    for (const std::string& line : one) diff.push_back(describe(docs[i]) + " " + line);
  }
  const std::string annotation = std::string("spec.template.metadata.annotations.") +
                                 kImageIdAnnotation + ": string " + kImageId + " vs string " +
                                 kOtherImageId;
  EXPECT_EQ(diff,
            std::vector<std::string>{"DaemonSet kube-system/capture-controller " + annotation})
      << "a rebuild under the same tag must change the Pod template, and only it";
}

INSTANTIATE_TEST_SUITE_P(
    Images, ControllerManifests,
    ::testing::Values(
        ImageCase{"ImageOfTheManifest", "capture-controller:dev", "capture-controller:dev"},
        ImageCase{"OtherTag", "capture-controller:v2", "capture-controller:v2"},
        ImageCase{"RegistryWithPort", "localhost:5000/team/capture-controller:dev",
                  "localhost:5000/team/capture-controller:dev"},
        ImageCase{"Digest",
                  "capture-controller@sha256:"
                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                  "capture-controller@sha256:"
                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        ImageCase{"NoTagMeansLatest", "capture-controller", "capture-controller:latest"}),
    [](const ::testing::TestParamInfo<ImageCase>& info) { return info.param.name; });

TEST(ControllerManifestsArguments, EmptyImageOrImageIdFailsWithAMessageAndPrintsNothing) {
  const std::string kubectl = fixtureKubectl();
  ASSERT_FALSE(kubectl.empty()) << "no kubectl under " << KUBECTL_DEBS_DIR;
  struct Case {
    std::string image, id, message;
  };
  for (const Case& c : {Case{"", kImageId, "IMAGE is empty"},
                        Case{"capture-controller:dev", "", "IMAGE_ID is empty"}}) {
    const Rendered rendered = render(kubectl, c.image, c.id);
    EXPECT_NE(rendered.exit_code, 0) << "image '" << c.image << "', id '" << c.id << "'";
    EXPECT_NE(rendered.err.find(c.message), std::string::npos) << rendered.err;
    EXPECT_EQ(rendered.out, "");
    EXPECT_TRUE(rendered.left_in_tmpdir.empty()) << lines(rendered.left_in_tmpdir);
  }
}

}  // namespace
}  // namespace ship

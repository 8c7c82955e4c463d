# Writes the build's version header, at every build, only when its content changes (so that
# only what includes it is rebuilt). Run by cmake -P with:
#   SOURCE_DIR    the source tree, for its git revision
#   OUTPUT        the header to write
#   VERSION       the release version (the project's, or -DCAPTURE_CONTROLLER_VERSION)
#   GIT_REVISION  the revision when the tree has no .git (the image build: .dockerignore drops
#                 it, so the Dockerfile passes it); empty: asked of git, "-dirty" when the tree
#                 differs from HEAD, "unknown" without git.
if(NOT GIT_REVISION)
  execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
    OUTPUT_VARIABLE GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE git_failed ERROR_QUIET)
  if(git_failed)
    set(GIT_REVISION "unknown")
  else()
    execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD --
      RESULT_VARIABLE dirty ERROR_QUIET)
    if(dirty)
      string(APPEND GIT_REVISION "-dirty")
    endif()
  endif()
endif()
set(content "#pragma once
// Written by cmd/capture-controller/version.cmake at build time.
namespace build_info {
inline constexpr char kVersion[] = \"${VERSION}\";
inline constexpr char kGitRevision[] = \"${GIT_REVISION}\";
}  // namespace build_info
")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" existing)
endif()
if(NOT existing STREQUAL content)
  file(WRITE "${OUTPUT}" "${content}")
endif()

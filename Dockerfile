# The capture-controller image: `docker build -t capture-controller:dev .` (kind/up.sh does).
# Every apt package comes from packages.txt (its `build` and `runtime` roles) or from the
# built binary itself (the packages of the shared libraries it links), never from a list here.
# BASE_IMAGE: both stages' base; any Debian or Ubuntu image with apt (tests/image builds this
# file on a local Debian 12 base, as no registry is reachable there).
ARG BASE_IMAGE=ubuntu:24.04

FROM ${BASE_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Alone first, so that the toolchain layer is rebuilt only when the package list changes.
COPY packages.txt ./
RUN apt-get update \
 && awk '!/^#/ && NF >= 2 && $2 ~ /(^|,)build(,|$)/ {print $1}' packages.txt \
    | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# .git stays out of the build context (.dockerignore): the revision that --version prints comes
# from here (kind/up.sh passes `git rev-parse`).
ARG VERSION=dev
ARG GIT_REVISION=unknown
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCAPTURE_CONTROLLER_BUILD_TESTS=OFF \
      -DCAPTURE_CONTROLLER_VERSION="${VERSION}" -DCAPTURE_CONTROLLER_GIT_REVISION="${GIT_REVISION}" \
 && cmake --build /build -j"$(nproc)" --target capture-controller \
 && cmake --install /build --strip --prefix /out \
 && deploy/image/runtime-packages.sh /out/bin/capture-controller > /out/runtime-packages.txt

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=dev
ARG GIT_REVISION=unknown
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL org.opencontainers.image.title="capture-controller" \
      org.opencontainers.image.description="On-demand packet captures of Kubernetes Pods, by annotation" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY packages.txt /tmp/
COPY --from=builder /out/runtime-packages.txt /tmp/
RUN apt-get update \
 && { awk '!/^#/ && NF >= 2 && $2 ~ /(^|,)runtime(,|$)/ {print $1}' /tmp/packages.txt; \
      cat /tmp/runtime-packages.txt; } \
    | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt /tmp/runtime-packages.txt
COPY --from=builder /out/bin/capture-controller /usr/local/bin/capture-controller
# Fails the build if a shared library of the binary is still missing.
RUN ! ldd /usr/local/bin/capture-controller | grep 'not found'
# tini as PID 1: it reaps what `kubectl exec` sessions leave behind (orphans are re-parented to
# PID 1, and the controller reaps only its own tcpdumps) and hands SIGTERM on to the controller.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/capture-controller"]

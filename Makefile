# Developer shortcuts. The README's commands are the source of truth; these only wrap them.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all build test bench format clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

# Installs what is missing (apt), builds and runs every test; needs root.
test:
	BUILD_DIR=$(abspath $(BUILD)) tests/run-all.sh

# Runs every benchmark binary (bench_*) that the build produced.
bench: build
	@set -e; for b in $$(find $(BUILD)/tests -type f -name 'bench_*' -perm -u+x | sort); do \
	  echo "== $$b"; $$b; done

format:
	git ls-files '*.cc' '*.h' | grep -v '^third_party/' | xargs clang-format -i

clean:
	rm -rf $(BUILD)

# ipc-demos. The two commands that matter: `make demo` and `make test`.
#
#   make demo       build (release) and run every demo's default scenario, one summary line each
#   make test       the whole test suite (unit, integration, shell recipes)
#   make lint       cargo fmt --check and clippy -D warnings, as CI runs them
#   make bench      the benchmarks, each side by side with its peer (see README, "Measured");
#                   then ipc-bench's full run (QUICK=1: its ~10 s run)
#   make clean-ipc  remove this project's leftover named objects, saying what it removed
#   make clean      cargo clean + clean-ipc

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
DEMOS := pipe-demo fifo-demo socket-demo signal-demo shm-demo mqueue-demo sem-demo
# A demo that has not finished in this time has hung; it is killed and counted as failed.
DEMO_TIMEOUT ?= 300

.PHONY: all demo test lint bench clean-ipc clean
all: demo

demo:
	$(CARGO) build --release --workspace --bins
	@status=0; \
	for d in $(DEMOS); do \
	  out=$$(timeout -k 5 $(DEMO_TIMEOUT) $(TARGET_DIR)/release/$$d 2>&1); rc=$$?; \
	  printf '%-12s %s\n' "$$d" "$$(printf '%s\n' "$$out" | tail -n 1)"; \
	  if [ $$rc -ne 0 ]; then \
	    status=1; echo "    $$d exited with status $$rc; its output:"; \
	    printf '%s\n' "$$out" | tail -n 40 | sed 's/^/    | /'; \
	  fi; \
	done; \
	exit $$status

test:
	$(CARGO) test --workspace --all-features

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

bench:
	$(CARGO) build --release --workspace --bins
	@for script in $(foreach d,$(DEMOS),$(wildcard $(d)/bench/*.sh)); do \
	  echo "== $$script"; CARGO_TARGET_DIR=$(TARGET_DIR) bash "$$script" || exit 1; \
	done
	@echo "== ipc-bench"; CARGO_TARGET_DIR=$(TARGET_DIR) $(TARGET_DIR)/release/ipc-bench $(if $(QUICK),--quick)

clean-ipc:
	@bash common/clean-ipc.sh

clean: clean-ipc
	$(CARGO) clean

# postling: `make run` starts a development server, `make test` runs every
# test (installing what a fresh Debian machine lacks), `make bench` the
# parser benchmarks, `make bench-smtp` the side-by-side run with Postfix.

CARGO ?= cargo
PYTHON ?= python3
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

.PHONY: build run test deps lint unit integration python bench bench-smtp \
        bench-pop3 bench-pop3-deps \
        bench-deps fuzz fuzz-deps clean

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release -- serve -c conf/dev.conf

test: deps lint unit integration python

# Real clients the tests drive; installed only when missing.
deps:
	@missing=""; \
	for tool in swaks:swaks mutt:mutt script:bsdutils doveadm:dovecot-core \
	            fetchmail:fetchmail \
	            openssl:openssl ip:iproute2; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && $(APT_INSTALL) $$missing; \
	fi
	@$(PYTHON) -c "import pytest" 2>/dev/null || \
	  $(PYTHON) -m pip install -q pytest || \
	  $(PYTHON) -m pip install -q --break-system-packages pytest

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	@# proto/ is sans-I/O: no sockets, files, clocks or event loop.
	@if grep -rnE 'mio::|rustls|std::fs|std::net::(Tcp|Udp)|Instant::now|SystemTime::now' src/proto; then \
	  echo "lint: I/O in src/proto"; exit 1; fi

unit:
	$(CARGO) test --lib --bins

integration:
	$(CARGO) test --test integration

python:
	$(CARGO) build
	$(PYTHON) -m pytest -q tests/python

bench:
	$(CARGO) bench --bench proto

bench-deps:
	@command -v smtp-source >/dev/null || { apt-get update -qq && \
	  $(APT_INSTALL) postfix; }

bench-smtp: bench-deps
	$(CARGO) build --release
	$(PYTHON) benches/smtp_vs_postfix.py

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install -q cargo-fuzz

# cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP lets stable take them.
FUZZ_SECONDS ?= 60
fuzz: fuzz-deps
	cd fuzz && for t in smtp_command smtp_data smtp_session pop3_session; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- \
	    -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf var

bench-pop3-deps:
	@command -v dovecot >/dev/null || { apt-get update -qq && \
	  $(APT_INSTALL) dovecot-core dovecot-pop3d; }

bench-pop3: bench-pop3-deps
	$(CARGO) build --release
	$(PYTHON) benches/pop3_vs_dovecot.py

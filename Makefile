# postling: `make run` starts a development server, `make test` runs every
# test (installing what a fresh Debian machine lacks), `make bench` the
# parser benchmarks, `make bench-smtp` the side-by-side run with Postfix.

CARGO ?= cargo
PYTHON ?= python3
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

.PHONY: bench-spam build run test deps lint unit integration python test-imaptest \
        release-static static-deps \
        bench bench-smtp bench-outbound \
        bench-pop3 bench-pop3-deps bench-memory bench-imap bench-imap-deps bench-fairness bench-logins bench-headers test-dovecot-diff \
        bench-deps fuzz fuzz-deps clean install arm-deps release-arm test-arm

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release -- serve -c conf/dev.conf

test: deps lint unit integration python

# Real clients the tests drive; installed only when missing.
deps:
	@missing=""; \
	for tool in swaks:swaks mutt:mutt script:bsdutils doveadm:dovecot-core \
	            fetchmail:fetchmail fail2ban-regex:fail2ban haproxy:haproxy \
	            systemd-analyze:systemd useradd:passwd strace:strace \
	            openssl:openssl ip:iproute2 mbsync:isync curl:curl \
	            offlineimap:offlineimap3 /usr/lib/dovecot/pop3:dovecot-pop3d \
	            unbound:unbound dkimverify:python3-dkim postmap:postfix \
	            rspamd:rspamd spamd:spamassassin spamass-milter:spamass-milter \
	            sieve-test:dovecot-sieve sieve-connect:sieve-connect \
	            chromium:chromium promtool:prometheus pebble:pebble; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; \
	done; \
	for module in spf:python3-spf authres:python3-authres Milter:python3-milter \
	              cryptography:python3-cryptography; do \
	  /usr/bin/python3 -c "import $${module%%:*}" 2>/dev/null || \
	    missing="$$missing $${module#*:}"; \
	done; \
	[ -f /usr/share/publicsuffix/public_suffix_list.dat ] || \
	  missing="$$missing publicsuffix"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | \
	    debconf-set-selections; \
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
	@# Modules import each other one way only (see the script's words).
	./.ci/import-circles src crate
	@# No function over 150 lines.
	./.ci/function-lengths src
	@# Fault injection is for tests: never a default feature.
	@if sed -n '/^\[features\]/,/^\[[a-z-]*\]$$/p' Cargo.toml | \
	    grep -qE '^default.*fault-injection'; then \
	  echo "lint: fault-injection must not be a default feature"; exit 1; fi

unit:
	$(CARGO) test --lib --bins

integration:
	$(CARGO) test --test integration

# The binary the Python tests drive has fault injection compiled in (a
# test sets POSTLING_FAULT to make a message or command panic); releases
# never do (`lint` checks it is no default feature).
python:
	$(CARGO) build --features fault-injection
	$(PYTHON) -m pytest -q tests/python

# Dovecot's imaptest compliance run alone (it is part of `make test`
# too, when ../shared/tools/imaptest is there).
test-imaptest: deps
	$(CARGO) build
	$(PYTHON) -m pytest -q tests/python/test_imaptest.py -rs

bench:
	$(CARGO) bench --bench proto

bench-deps:
	@command -v smtp-source >/dev/null || { apt-get update -qq && \
	  $(APT_INSTALL) postfix; }

bench-smtp: bench-deps
	$(CARGO) build --release
	$(PYTHON) benches/smtp_vs_postfix.py

bench-spam:
	@command -v bogofilter >/dev/null || { apt-get update -qq && \
	  $(APT_INSTALL) bogofilter; }
	@command -v npm >/dev/null || $(APT_INSTALL) npm
	$(CARGO) build --release
	$(PYTHON) benches/spam_vs_bogofilter.py

bench-outbound: bench-deps
	@command -v unbound >/dev/null || $(APT_INSTALL) unbound
	$(CARGO) build --release
	$(PYTHON) benches/outbound_vs_postfix.py

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install -q cargo-fuzz

# `make install` (PREFIX, DESTDIR as usual): the binary, the systemd
# unit with its paths filled in, the example config (never over an
# existing one), an empty users file (0600, owned by postling), the
# fail2ban filter and jail, and the postling system user. With DESTDIR
# the user goes into DESTDIR/etc/passwd if that exists (a package root).
PREFIX ?= /usr/local
BIN ?= target/release/postling
ETC = $(DESTDIR)/etc/postling
install:
	@[ -x $(BIN) ] || $(CARGO) build --release
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/postling
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/postling/README.md
	install -D -m 0644 conf/fail2ban/postling.conf \
	  $(DESTDIR)$(PREFIX)/share/postling/fail2ban/filter.d/postling.conf
	install -D -m 0644 conf/fail2ban/jail.local \
	  $(DESTDIR)$(PREFIX)/share/postling/fail2ban/jail.local
	install -d -m 0755 $(ETC) $(DESTDIR)/etc/systemd/system
	[ -e $(ETC)/postling.conf ] || install -m 0644 conf/postling.conf $(ETC)/
	[ -e $(ETC)/aliases ] || install -m 0644 conf/aliases $(ETC)/
	[ -e $(ETC)/users ] || install -m 0600 /dev/null $(ETC)/users
	sed 's|/usr/local/|$(PREFIX)/|g' conf/systemd/postling.service \
	  > $(DESTDIR)/etc/systemd/system/postling.service
	@if [ -z "$(DESTDIR)" ] || [ -e $(DESTDIR)/etc/passwd ]; then \
	  prefix=$${DESTDIR:+--prefix $(DESTDIR)}; \
	  grep -q '^postling:' $(DESTDIR)/etc/passwd || \
	    useradd $$prefix --system --user-group --no-create-home \
	      --home-dir /var/lib/postling --shell /usr/sbin/nologin postling; \
	  uid=$$(grep '^postling:' $(DESTDIR)/etc/passwd | cut -d: -f3); \
	  gid=$$(grep '^postling:' $(DESTDIR)/etc/passwd | cut -d: -f4); \
	  chown $$uid:$$gid $(ETC)/users; \
	  install -d -m 0711 -o $$uid -g $$gid $(DESTDIR)/var/lib/postling; \
	fi
	@echo "installed. Edit $(ETC)/postling.conf, add users with" \
	  "'postling user add', then: systemctl daemon-reload &&" \
	  "systemctl enable --now postling"

# cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP lets stable take them.
FUZZ_SECONDS ?= 60
fuzz: fuzz-deps
	cd fuzz && for t in smtp_command smtp_data smtp_session pop3_session \
	                    proxy_header imap_session imap_mime imap_args dns_answer smtp_client srs \
	                    spf_record dmarc_record dkim_tags arc_headers milter_reader \
	                    sieve_parser managesieve_session http_request json_value; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- \
	    -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
	@# Whole messages and folders through the content pipeline: big
	@# inputs, and a timeout low enough to call quadratic work a crash.
	cd fuzz && ./real-mail-seeds.sh && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run message_raw corpus/message_raw -- \
	    -max_len=1048576 -timeout=5 -report_slow_units=1 \
	    -max_total_time=$(FUZZ_SECONDS) && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run message_generated -- \
	    -max_len=8192 -timeout=5 -report_slow_units=1 \
	    -max_total_time=$(FUZZ_SECONDS) && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run spam_tokens corpus/message_raw -- \
	    -max_len=1048576 -timeout=5 -report_slow_units=1 \
	    -max_total_time=$(FUZZ_SECONDS) && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run sieve_run -- \
	    -max_len=65536 -timeout=5 -report_slow_units=1 \
	    -max_total_time=$(FUZZ_SECONDS)

clean:
	$(CARGO) clean
	rm -rf var

bench-pop3-deps:
	@command -v dovecot >/dev/null || { apt-get update -qq && \
	  $(APT_INSTALL) dovecot-core dovecot-pop3d; }

bench-pop3: bench-pop3-deps
	$(CARGO) build --release
	$(PYTHON) benches/pop3_vs_dovecot.py

bench-imap-deps:
	@command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ] || { \
	  apt-get update -qq && \
	  $(APT_INSTALL) dovecot-core dovecot-imapd dovecot-pop3d; }

# IMAP side by side with a private Dovecot: imaptest stress, idle-session
# memory, 10,000 IDLE sessions, SELECT and POP3 login on 100,000 messages.
bench-imap: bench-imap-deps
	$(CARGO) build --release
	$(PYTHON) benches/imap_vs_dovecot.py

# One user's long SEARCHes against another's SELECT and FETCH latency,
# postling and a private Dovecot side by side (figures in README).
bench-fairness: bench-imap-deps
	$(CARGO) build --release
	$(PYTHON) benches/imap_fairness.py

# Header searches, SORT and THREAD on 5,000 messages, cold and warm,
# postling and a private Dovecot side by side.
bench-headers: bench-imap-deps
	$(CARGO) build --release
	$(PYTHON) benches/header_search.py

# The same messages in postling and a private Dovecot, the same FETCH,
# SEARCH, SORT and THREAD to both; fails on a difference the README's
# "Differences from Dovecot" does not explain.
test-dovecot-diff: bench-imap-deps
	$(CARGO) build --release
	$(PYTHON) benches/dovecot_diff.py

# What an IMAP LOGIN costs with and without the login cache.
bench-logins:
	$(CARGO) build --release
	$(PYTHON) benches/login_cache.py

# Peak and resting RSS under the attacks of issue 7 (figures in README).
bench-memory:
	$(CARGO) build --release
	$(PYTHON) benches/memory.py

# ARM release builds for the Raspberry Pi and friends, made on x86_64
# Debian with Debian's own Rust (rustup cannot fetch ARM targets here):
# std is built from rust-web-src with -Zbuild-std (RUSTC_BOOTSTRAP lets
# the stable compiler take it), linked by Debian's cross gcc, and run
# under qemu-user for the tests. Binaries land in
# target/arm/TARGET/release/postling.
ARM_TARGETS = aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
ARM_ENV = RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
  CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf" \
  CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc \
  AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
ARM_CARGO = $(ARM_ENV) cargo +deb
ARM_DIR = --target-dir target/arm

arm-deps:
	@missing=""; \
	for tool in /usr/bin/rustc:rustc-web /usr/bin/cargo:cargo-web \
	            /usr/lib/rustlib/src/rust/library:rust-web-src \
	            aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
	            arm-linux-gnueabihf-gcc:gcc-arm-linux-gnueabihf \
	            /usr/aarch64-linux-gnu/include/stdio.h:libc6-dev-arm64-cross \
	            /usr/arm-linux-gnueabihf/include/stdio.h:libc6-dev-armhf-cross \
	            qemu-aarch64:qemu-user /usr/sbin/unbound:unbound; do \
	  p=$${tool%%:*}; \
	  [ -e "$$p" ] || command -v "$$p" >/dev/null || missing="$$missing $${tool#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | \
	    debconf-set-selections; \
	  apt-get update -qq && $(APT_INSTALL) $$missing; \
	fi
	@rustup toolchain list | grep -q '^deb' || rustup toolchain link deb /usr

release-arm: arm-deps
	for t in $(ARM_TARGETS); do \
	  $(ARM_CARGO) build --release --target $$t \
	    -Zbuild-std=std,panic_abort $(ARM_DIR) || exit 1; \
	done
	@ls -l target/arm/*/release/postling

# Fully static musl binaries, for any Linux of the architecture whatever
# its libc (Raspberry Pi OS Bullseye, Debian 11, Ubuntu 20.04, Alpine,
# OpenWrt): Debian's musl (multiarch for the ARM ones) and Debian's Rust
# with -Zbuild-std as above, linked by each target's gcc reading musl's
# specs file (musl's headers, start files and libc), not PIE. Unwinding
# (a panic fails one job, not the process) comes from LLVM's libunwind
# as Debian builds it, the ARM ones unpacked from their packages, with
# the one glibc symbol it wants (__fprintf_chk) given by a shim.
# Binaries land in target/static/TARGET/release/postling.
STATIC_TARGETS = x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  armv7-unknown-linux-musleabihf
STATIC = target/static
MUSL_SPECS = /usr/lib/$(1)/musl-gcc.specs
UNWIND = $(STATIC)/unwind/$(1)
STATIC_FLAGS = -C link-self-contained=no -C relocation-model=static
STATIC_ENV = RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc \
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$(STATIC_FLAGS) -L $(CURDIR)/$(call UNWIND,x86_64-unknown-linux-musl)" \
  CC_x86_64_unknown_linux_musl=musl-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$(STATIC_FLAGS) -L $(CURDIR)/$(call UNWIND,aarch64-unknown-linux-musl) -C link-arg=-specs=$(call MUSL_SPECS,aarch64-linux-musl)" \
  CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
  CFLAGS_aarch64_unknown_linux_musl="-specs=$(call MUSL_SPECS,aarch64-linux-musl)" \
  AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
  CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=arm-linux-gnueabihf-gcc \
  CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="$(STATIC_FLAGS) -L $(CURDIR)/$(call UNWIND,armv7-unknown-linux-musleabihf) -C link-arg=-specs=$(call MUSL_SPECS,arm-linux-musleabihf)" \
  CC_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-gcc \
  CFLAGS_armv7_unknown_linux_musleabihf="-specs=$(call MUSL_SPECS,arm-linux-musleabihf)" \
  AR_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-ar
FORTIFY_SHIM = '\#include <stdarg.h>\n\#include <stdio.h>\nint __fprintf_chk(FILE *f, int flag, const char *fmt, ...) { va_list ap; va_start(ap, fmt); int r = vfprintf(f, fmt, ap); va_end(ap); (void)flag; return r; }\n'

static-deps: arm-deps
	@[ -e /usr/bin/musl-gcc ] && [ -e $(call MUSL_SPECS,aarch64-linux-musl) ] && \
	  [ -e $(call MUSL_SPECS,arm-linux-musleabihf) ] && \
	  [ -e /usr/lib/llvm-14/lib/libunwind.a ] || { \
	  dpkg --add-architecture arm64 && dpkg --add-architecture armhf && \
	  apt-get update -qq && \
	  $(APT_INSTALL) musl-tools musl-dev musl-dev:arm64 musl-dev:armhf \
	    libunwind-14-dev; }
	@mkdir -p $(STATIC)/deb
	@for arch in arm64 armhf; do \
	  [ -e $(STATIC)/deb/$$arch/usr/lib/llvm-14/lib/libunwind.a ] || \
	  ( cd $(STATIC)/deb && apt-get download -q libunwind-14-dev:$$arch && \
	    dpkg-deb -x libunwind-14-dev_*_$$arch.deb $$arch ) || exit 1; \
	done
	@set -e; for t in x86_64-unknown-linux-musl:musl-gcc:/usr \
	    aarch64-unknown-linux-musl:aarch64-linux-gnu:$(STATIC)/deb/arm64/usr \
	    armv7-unknown-linux-musleabihf:arm-linux-gnueabihf:$(STATIC)/deb/armhf/usr; do \
	  target=$${t%%:*}; rest=$${t#*:}; gnu=$${rest%%:*}; root=$${rest#*:}; \
	  dir=$(STATIC)/unwind/$$target; mkdir -p $$dir; \
	  case $$target in \
	    x86_64*) cc=musl-gcc; ar=ar ;; \
	    aarch64*) cc="$$gnu-gcc -specs=$(call MUSL_SPECS,aarch64-linux-musl)"; ar=$$gnu-ar ;; \
	    armv7*) cc="$$gnu-gcc -specs=$(call MUSL_SPECS,arm-linux-musleabihf)"; ar=$$gnu-ar ;; \
	  esac; \
	  cp $$root/lib/llvm-14/lib/libunwind.a $$dir/libunwind.a; \
	  printf $(FORTIFY_SHIM) | $$cc -O2 -x c -c - -o $$dir/shim.o; \
	  $$ar r $$dir/libunwind.a $$dir/shim.o; \
	done

release-static: static-deps
	for t in $(STATIC_TARGETS); do \
	  $(STATIC_ENV) cargo +deb build --release --target $$t \
	    -Zbuild-std=std,panic_abort --target-dir $(STATIC) || exit 1; \
	done
	@file $(STATIC)/*/release/postling

test-arm: release-arm release-static
	for t in $(ARM_TARGETS); do \
	  $(ARM_CARGO) test --lib --bins --target $$t -Zbuild-std $(ARM_DIR) \
	    || exit 1; \
	done
	$(PYTHON) tests/arm/smoke.py \
	  target/arm/aarch64-unknown-linux-gnu/release/postling \
	  qemu-aarch64 /usr/aarch64-linux-gnu
	$(PYTHON) tests/arm/smoke.py \
	  target/arm/armv7-unknown-linux-gnueabihf/release/postling \
	  qemu-arm /usr/arm-linux-gnueabihf
	@# The static ones need no sysroot: nothing is loaded from the host.
	$(PYTHON) tests/arm/smoke.py \
	  target/static/x86_64-unknown-linux-musl/release/postling - -
	$(PYTHON) tests/arm/smoke.py \
	  target/static/aarch64-unknown-linux-musl/release/postling qemu-aarch64 -
	$(PYTHON) tests/arm/smoke.py \
	  target/static/armv7-unknown-linux-musleabihf/release/postling qemu-arm -

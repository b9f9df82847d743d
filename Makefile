# Quick start on a fresh Debian machine, as root:  make demo   |   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-stop test lint bench system-deps deps clean deb

# Debian packages the tests and the demo need: slapd (the real directory), ldap-utils;
# libfaketime (a slapd whose clock the province simulation controls); Dovecot and Postfix with
# their LDAP lookups (the mail-server proofs); Samba's AD DC (the ad profile); chromium and
# poppler-utils (rendered HR results, slips, reports, address books); what `make deb` builds
# the package with and its test checks (man page, completion); docker-compose (the compose
# file's structure, without an engine).
DEB_PACKAGES := slapd ldap-utils libfaketime \
  dovecot-imapd dovecot-ldap dovecot-sqlite postfix postfix-ldap \
  samba samba-ad-dc samba-ad-provision winbind krb5-user \
  chromium poppler-utils openssl \
  debhelper dpkg-dev fakeroot python3-venv python3-pip groff-base man-db docker-compose
system-deps:
	@if ! dpkg-query -W -f='$${Status}\n' $(DEB_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    && [ "$$(dpkg-query -W -f='$${Status}\n' $(DEB_PACKAGES) 2>/dev/null | wc -l)" = "$(words $(DEB_PACKAGES))" ]; then :; else \
	  echo "==> installing Debian packages: $(DEB_PACKAGES)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing syncd with its test and dev extras"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[test,dev]'
	@touch $@

# The developer's path (a .venv with the test and dev tools, slapd for the tests); a production
# host installs the Debian package instead (make deb, docs/install.md).
deps: system-deps $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite on both cores (pytest-xdist; tests/conftest.py keeps a module on one worker and the
# tests that change this machine on one); JOBS=0 runs it in this one process.
JOBS ?= 2
test: deps lint
	$(BIN)/pytest -n $(JOBS)

# make demo PROFILE=openldap|iredmail|zimbra|ad: the same sample on another directory profile
demo: deps
	PROFILE=$(PROFILE) $(BIN)/python -m devtools.demo

# issue 14's table against its baselines: the 10k set (a few minutes); BIG=1: the 100k set
bench: deps
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_uid.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_reconcile.py $(if $(BIG),--people 100000 --repeat 3)
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bench_creates.py $(if $(BIG),--people 20000,--people 3000)

demo-stop: $(STAMP)
	PROFILE=$(PROFILE) $(BIN)/python -m devtools.demo stop

# The Debian package, the production install (docs/install.md): $(DEB_OUT)/syncd_*.deb. Built
# from a copy of the tree's files (tracked and new, never ignored ones such as .venv), so the
# working tree gets no build litter. Needs debhelper, dpkg-dev, python3-venv, python3-pip and
# groff-base, and reaches PyPI for syncd's runtime libraries (debian/rules says why).
DEB_OUT ?= build/deb
deb:
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && dpkg-buildpackage -b -us -uc
	rm -rf $(DEB_OUT)/src
	@ls -1 $(DEB_OUT)/*.deb

clean:
	-$(BIN)/python -m devtools.demo stop 2>/dev/null
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache build/deb

# Only python3 and make are assumed. Every target creates .venv when missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint,dashboard,cluster]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m botclave_cli.demo

# The browser test needs Debian's chromium: installed here when missing and we are root (CI);
# otherwise that test skips and says why.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing chromium (apt-get) for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null) || echo "make test: chromium could not be installed; browser test skips"; \
	  else echo "make test: no chromium and not root; the browser test skips" \
	    "(install it with: apt-get install -y chromium)"; fi; }
	$(BIN)/python -m pytest -p no:cacheprovider

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,lint,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check botclave_cli tests
	$(BIN)/mypy botclave_cli

clean:
	rm -rf $(VENV) build *.egg-info

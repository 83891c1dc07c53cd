# homing: `make serve` runs the service on its embedded defaults, `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_ZONE ?= demo.homing.test

.PHONY: serve test lint bench clean screenshots

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

serve: $(BIN)/.installed
	$(BIN)/homing zone add $(DEMO_ZONE) --exist-ok
	$(BIN)/homing serve

# Three processes on two cores: most tests wait on real peers and servers. A module's tests
# stay on one process (--dist loadfile), so its module-scoped peers start once. The tests
# start hundreds of homing processes (commands, servers, clients): where the environment
# sets PYTHONDONTWRITEBYTECODE, each would compile the package from source again.
test: $(BIN)/.installed
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n 3 --dist loadfile

# Renew docs/screenshots/ from the browser tests (commit the pictures that changed).
screenshots: $(BIN)/.installed
	HOMING_SCREENSHOTS=1 $(BIN)/pytest -q tests/web/portal/test_browser.py tests/web/portal/test_browser_groups.py tests/web/portal/test_browser_reset.py tests/web/portal/test_browser_notifications.py tests/web/portal/test_browser_phone.py

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# Benchmarks (docs/benchmarks.md): needs dnsperf, knot, nsd, bind9, wrk from apt and '.[bench]'.
# Knobs: BENCH_HOSTS, BENCH_SECONDS, BENCH_SCALE_HOSTS; `make bench BENCH_QUICK=--quick` smoke-tests.
BENCH_HOSTS ?= 100000
BENCH_SECONDS ?= 20
BENCH_SCALE_HOSTS ?= 100000,1000000
BENCH_QUICK ?=

bench: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/dns_serving.py --hosts $(BENCH_HOSTS) --seconds $(BENCH_SECONDS) --profile $(BENCH_QUICK)
	$(BIN)/python bench/scale.py --hosts $(BENCH_SCALE_HOSTS) --profile $(BENCH_QUICK)
	$(BIN)/python bench/updates.py --clients 10 --seconds 10
	$(BIN)/python bench/updates.py --clients 100 --seconds 10 --profile
	$(BIN)/python bench/updates.py --rate 3000 --seconds 10
	$(BIN)/python bench/updates.py --clients 10 --seconds 10 --postgres
	$(BIN)/python bench/updates.py --clients 100 --seconds 10 --postgres
	$(BIN)/python bench/updates.py --rate 3000 --seconds 10 --postgres
	$(BIN)/python bench/freshness.py --rounds 50
	$(BIN)/python bench/plot.py updates
	$(BIN)/python bench/plot.py freshness

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

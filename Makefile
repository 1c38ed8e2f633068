# hbeam — AO-Core for Python with a Rust core.  `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PORT ?= 8734
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-8s %s\n", $$1, $$2}'

$(VENV)/.deps: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "maturin>=1.5,<2"
	$(VPY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  print("\n".join(p["dependencies"] + [d for ds in p["optional-dependencies"].values() for d in ds]))' \
	  > $(VENV)/requirements.txt
	$(VPY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

.PHONY: deps
deps: $(VENV)/.deps  ## create .venv and install every dependency (test, bench, lint included)

.PHONY: build
build: deps  ## build the native core (release) into the package: maturin develop --release
	rm -f python/hbeam/_native*.so
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin develop --release -q

.PHONY: run
run: build  ## build, then start the node on :8734 with the example token process
	$(VPY) -m hbeam.examples.run --port $(PORT)

.PHONY: chromium
chromium:  ## install Debian's chromium (the HTML view test drives it headless) if it is absent
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
	  || echo "chromium could not be installed: the headless-browser test will be skipped"

.PHONY: test
test: build chromium  ## build, cargo test, then every test on both backends (pure and native)
	cargo test -q --workspace --no-default-features
	HBEAM_REQUIRE_NATIVE=1 $(VPY) -m pytest -q -p no:cacheprovider -n 2 $(PYTEST_ARGS)

.PHONY: bench
bench: build  ## run benches/ and regenerate BENCHMARKS.md
	mkdir -p .benchmarks
	$(VPY) -m pytest benches -o "python_files=bench_*.py" -q -p no:cacheprovider --benchmark-only --benchmark-json=.benchmarks/latest.json
	$(VPY) benches/report.py .benchmarks/latest.json > BENCHMARKS.md

.PHONY: wheel
wheel: deps  ## build an abi3 wheel, install it into a fresh venv and import it
	rm -rf dist
	$(VENV)/bin/maturin build --release -q --out dist
	rm -rf /tmp/hbeam-wheel-venv && $(PY) -m venv /tmp/hbeam-wheel-venv
	/tmp/hbeam-wheel-venv/bin/pip install -q dist/hbeam-*.whl
	cd /tmp && /tmp/hbeam-wheel-venv/bin/python -c 'import hbeam; assert hbeam.BACKEND == "native", hbeam.BACKEND; print("wheel ok:", hbeam.__version__, hbeam.BACKEND)'

# Every check runs even when an earlier one fails, so one run lists every problem; the
# target fails if any did.  It builds first: stubtest imports the current hbeam._native.
.PHONY: lint
lint: build  ## ruff, mypy --strict, stubtest, cargo fmt --check, cargo clippy -D warnings
	@failed=(); \
	check() { local name=$$1; shift; echo "+ $$*"; "$$@" || failed+=("$$name"); }; \
	check "ruff check" $(VENV)/bin/ruff check python tests benches; \
	check "ruff format" $(VENV)/bin/ruff format --check python tests benches; \
	check "mypy" $(VENV)/bin/mypy python tests benches; \
	check "stubtest" $(VPY) -m mypy.stubtest hbeam._native; \
	check "cargo fmt" cargo fmt --all --check; \
	check "cargo clippy" env PYO3_PYTHON=$(abspath $(VPY)) \
		cargo clippy --workspace --all-targets -- -D warnings; \
	if (( $${#failed[@]} )); then printf 'lint failed: %s\n' "$${failed[@]}"; exit 1; fi; \
	echo "lint ok"

.PHONY: format
format: deps  ## ruff fix + format, cargo fmt
	$(VENV)/bin/ruff check --fix python tests benches
	$(VENV)/bin/ruff format python tests benches
	cargo fmt --all

.PHONY: clean
clean:  ## remove build outputs and caches
	rm -rf target dist .benchmarks .pytest_cache .hypothesis .mypy_cache .ruff_cache
	rm -f python/hbeam/_native*.so

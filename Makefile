# tdkt — the two commands do all the set-up themselves.
# On Windows (GNU make from Git for Windows, MSYS2 or Chocolatey) the venv's programs are in
# Scripts/ rather than bin/, and Python is often called python or py rather than python3: there
# the first of python3, python, py that is Python 3.11 or later is used (set PYTHON to choose).
ifeq ($(OS),Windows_NT)
BIN_DIR := Scripts
# Looked for once, when the venv is made (a candidate that is missing may say so on stderr: no
# redirection works in both sh and cmd.exe, the two shells make may run there).
ifeq ($(origin PYTHON),undefined)
PYTHON = $(eval PYTHON := $(firstword $(foreach p,python3 python py,$(if $(shell $(p) -c "import sys; sys.version_info >= (3, 11) and print(1)"),$(p)))))$(PYTHON)
endif
else
BIN_DIR := bin
PYTHON ?= python3
endif
VENV := .venv
BIN := $(VENV)/$(BIN_DIR)
STAMP := $(VENV)/.installed

INBOX ?= input_samples/hop-thu
OUT ?= output
CONFIG ?= input_samples/tdkt.toml

.PHONY: consolidate templates test test-slow fuzz lint samples bench golden clean

# The project's modules are byte-compiled once installed, as pip does for the libraries: where
# Python is told not to write bytecode (PYTHONDONTWRITEBYTECODE, as on some CI and build
# machines) every run compiled its ~60 modules again (0.07 s of each start; a module edited
# since is compiled again as usual, its old bytecode ignored).
$(STAMP): pyproject.toml
	$(if $(PYTHON),,$(error Không tìm thấy Python 3.11 trở lên (python3, python hoặc py); cài Python rồi chạy lại, hoặc chỉ rõ: make PYTHON=đường/dẫn/python))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m compileall -q pipeline
	$(BIN)/python -c "import pathlib; pathlib.Path('$(STAMP)').touch()"

RESULTS_INBOX ?= input_samples/hop-thu-ket-qua

# The sample commune office's two rounds, then the Sở's two rounds of the sample province (its
# outputs in OUT/<năm học>/<đợt>/tinh/, its history store apart from the office's; the year end
# is checked against the registration inbox its configuration names).
PROVINCE_CONFIG ?= input_samples/tinh/tdkt.toml
PROVINCE_INBOX ?= input_samples/tinh/hop-thu-dang-ky
PROVINCE_RESULTS_INBOX ?= input_samples/tinh/hop-thu-ket-qua

consolidate: $(STAMP)
	$(BIN)/tdkt consolidate $(INBOX) --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt consolidate $(RESULTS_INBOX) --round ket-qua --registrations $(INBOX) \
		--out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt consolidate $(PROVINCE_INBOX) --out $(OUT) --config $(PROVINCE_CONFIG)
	$(BIN)/tdkt consolidate $(PROVINCE_RESULTS_INBOX) --round ket-qua --out $(OUT) \
		--config $(PROVINCE_CONFIG)

templates: $(STAMP)
	$(BIN)/tdkt templates --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt templates --form ket-qua --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt templates --form lich-su --out $(OUT) --config $(CONFIG)

# The suite, under 6 minutes on 2 cores: most tests run on one core, so the test files run in
# two pytest processes side by side — the files built on the sample office's consolidations
# (TESTS_A, which share session fixtures) and all the others (a new test file lands there) —
# each with its own temporary folder; both must pass. Tests marked `slow` (a generated
# 300-school office compared with its golden copy, the wheel installed, more rule-table runs,
# serial-vs-parallel runs, the samples regenerated, timeouts and kills, a sheet filled to
# Excel's last row) run in `make test-slow`; CI runs both.
TESTS_A := tests/test_results.py tests/test_end_to_end.py tests/test_parallel.py \
	tests/test_cli.py tests/test_golden.py tests/test_completeness.py tests/test_roundtrip.py \
	tests/test_template.py tests/test_xlsx.py tests/test_install.py tests/test_rule_cases.py \
	tests/test_three_years.py tests/test_spawn.py tests/test_print.py tests/test_official.py \
	tests/test_feedback.py tests/test_prefill.py tests/test_commune_report.py \
	tests/test_province_reports.py tests/test_sample_province.py tests/test_province_round.py
TESTS_B := $(filter-out $(TESTS_A),$(sort $(wildcard tests/test_*.py)))
PYTEST_B_LOG := .pytest-b.log

test: $(STAMP)
	$(BIN)/ruff check .
	@rm -rf .pytest-tmp-b; \
	$(BIN)/python -m pytest -m "not slow" -p no:cacheprovider --basetemp=.pytest-tmp-b \
		$(TESTS_B) > $(PYTEST_B_LOG) 2>&1 & other=$$!; \
	$(BIN)/python -m pytest -m "not slow" $(TESTS_A); first=$$?; \
	wait $$other; second=$$?; \
	echo "--- the other test files ($(PYTEST_B_LOG)) ---"; cat $(PYTEST_B_LOG); \
	rm -rf .pytest-tmp-b; \
	test $$first -eq 0 -a $$second -eq 0

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The hypothesis fuzz of hostile school files (tests/test_fuzz.py) with ten times the examples
# `make test` runs, drawn at random instead of the fixed ones (about 4 minutes on 2 cores).
fuzz: $(STAMP)
	TDKT_FUZZ_SCALE=10 $(BIN)/python -m pytest -p no:cacheprovider tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check .

# Benchmarks, generated in a temporary folder: a Phòng's round on 3,000 school workbooks
# (against pandas and calamine, with the targets of issue 7), then the Sở's round on a province
# of 120 communes' reports (each written by tdkt from a 10–40-school inbox) and 150 schools the
# Sở manages (time, peak memory, ratio to calamine). One part, or a smaller province:
# make bench BENCH_ARGS="--only province --communes 12 --direct 15" (also --keep DIR, --strict).
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

# Rewrite the golden copies of the outputs (tests/golden/): only for a deliberate change.
golden: $(STAMP)
	$(BIN)/python -m tests.golden --update

samples: $(STAMP)
	$(BIN)/python -m tests.sample_inbox input_samples
	$(BIN)/python -m tests.sample_province input_samples/tinh

clean:
	rm -rf $(VENV) .pytest_cache

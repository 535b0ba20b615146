# tdkt — the two commands do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

INBOX ?= input_samples/hop-thu
OUT ?= output
CONFIG ?= input_samples/tdkt.toml

.PHONY: consolidate templates test test-slow lint samples bench golden clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

RESULTS_INBOX ?= input_samples/hop-thu-ket-qua

consolidate: $(STAMP)
	$(BIN)/tdkt consolidate $(INBOX) --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt consolidate $(RESULTS_INBOX) --round ket-qua --registrations $(INBOX) \
		--out $(OUT) --config $(CONFIG)

templates: $(STAMP)
	$(BIN)/tdkt templates --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt templates --form ket-qua --out $(OUT) --config $(CONFIG)
	$(BIN)/tdkt templates --form lich-su --out $(OUT) --config $(CONFIG)

# The suite (under 6 minutes on 2 cores). Tests marked `slow` (a generated 300-school office
# compared with its golden copy) run in `make test-slow`; CI (.ci/run) runs both.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

# Province-scale benchmark: 3,000 generated school workbooks in a temporary folder.
bench: $(STAMP)
	$(BIN)/python -m tests.bench

# Rewrite the golden copies of the outputs (tests/golden/): only for a deliberate change.
golden: $(STAMP)
	$(BIN)/python -m tests.golden --update

samples: $(STAMP)
	$(BIN)/python -m tests.sample_inbox input_samples

clean:
	rm -rf $(VENV) .pytest_cache

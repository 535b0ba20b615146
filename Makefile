# tdkt — the two commands do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

INBOX ?= input_samples/hop-thu
OUT ?= output
CONFIG ?= input_samples/tdkt.toml

.PHONY: consolidate templates test lint samples bench golden clean

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

# The suite on 2 cores: the slow tests (a generated province; marked `slow`) run in a second
# process beside the others, in their own temporary folder; both must pass.
test: $(STAMP)
	$(BIN)/ruff check .
	@rm -f .pytest-slow.log; \
	$(BIN)/python -m pytest -m slow -p no:cacheprovider --basetemp=.pytest-slow-tmp \
		> .pytest-slow.log 2>&1 & slow=$$!; \
	$(BIN)/python -m pytest -m "not slow"; fast=$$?; \
	wait $$slow; slow_rc=$$?; \
	echo "--- slow tests (pytest -m slow) ---"; cat .pytest-slow.log; \
	rm -rf .pytest-slow-tmp; \
	test $$fast -eq 0 -a $$slow_rc -eq 0

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

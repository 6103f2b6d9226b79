# Two entry points (see README):  make run   -> set up .venv on first use, open the workbench
#                                 make test  -> set up .venv on first use, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The CPU build of torch that lies on the development machines' disk. Elsewhere pass
# TORCH=torch (or a CUDA/ROCm build) to take what your platform offers.
TORCH  ?= torch==2.13.0
ARGS   ?=

.PHONY: run test bench clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# torch is installed on its own first so pip resolves the local wheel, not a multi-GB download
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/workbench $(ARGS)

# the import boundaries first (lint-imports, contracts in pyproject.toml; about a second), then the suite
test: $(BIN)/.installed
	$(BIN)/lint-imports --no-logo --no-cache
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(ARGS)

bench: $(BIN)/.installed
	$(BIN)/workbench bench train examples/shakespeare_char.toml

clean-venv:
	rm -rf $(VENV)

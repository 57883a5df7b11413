# Both targets create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test conformance bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/run_all.py

test: $(STAMP)
	$(PY) -m pytest tests

# The ONNX backend node tests on jit and iree-cpu; writes docs/conformance.md.
conformance: $(STAMP)
	$(PY) -m tests.onnx_conformance.run --backends jit,iree-cpu --report docs/conformance.md

# mlirc against eager, torch.compile, ONNX Runtime and IREE; see benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/peers.py

clean:
	rm -rf $(VENV) build *.egg-info

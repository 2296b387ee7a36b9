#!/usr/bin/env bash
# Re-make data/results/ner_3min.jsonl: every method on the project's NER set, 3 minutes of training each.
# Run it on an otherwise idle machine (the numbers are step times and what fits in 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
LOG=data/results/ner_3min.jsonl
rm -f "$LOG"
C="python -m ptutor.experiments ner --model minilm --train data/ner/train.conll --dev data/ner/dev.conll
   --test data/ner/test.conll --minutes 3 --seed 0 --quiet --out $LOG"
$C --method ft
$C --method pt2 --lr 5e-2
$C --method pt2 --lr 5e-2 --init vocab
$C --method probe
$C --method pt --num-virtual-tokens 16
$C --method pt2 --lr 5e-2 --num-virtual-tokens 64
$C --method pt2 --lr 1e-3 --prefix-projection true --encoder-hidden-size 512

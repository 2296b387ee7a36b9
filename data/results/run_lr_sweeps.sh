#!/usr/bin/env bash
# Learning-rate sweeps on dev, one per method and task; the picks become the methods' default_lr and the
# LRs of the benchmark logs. Two queues run side by side, one torch thread each (so the two never
# compete for a core); every run in a queue gets the same budget and seed.
#   NER: minilm on a 600-sentence sample of data/ner/train.conll (--train-limit 600), 1.5 minutes a run,
#        scored on the 500 dev sentences.
#   gen: smollm2-135m on data/restaurants, 2 minutes a run, scored on the 150 dev inputs (613 references).
# About 45 minutes on a 2-core CPU. Budgets are shorter than the benchmarks' (3 and 10 minutes): the
# best LR for a longer run is usually no higher, so read the picks as upper ends of a good range.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
NER=data/results/lr_sweep_ner.jsonl
GEN=data/results/lr_sweep_gen.jsonl
rm -f "$NER" "$GEN"
ner() { $PY -m ptutor.experiments ner --model minilm --train data/ner/train.conll --train-limit 600 \
          --dev data/ner/dev.conll --test data/ner/dev.conll --minutes 1.5 --seed 0 --quiet --out "$NER" "$@"; }
gen() { $PY -m ptutor.experiments gen --model smollm2-135m --train data/restaurants/train.jsonl \
          --dev data/restaurants/dev.jsonl --test data/restaurants/dev.jsonl --minutes 2 --seed 0 --quiet --out "$GEN" "$@"; }
(
  ner --method ft --lr 5e-5,1e-4,2e-4,5e-4
  ner --method pt2 --lr 1e-2,3e-2,5e-2,1e-1
  ner --method pt --lr 1e-2,3e-2,1e-1
  ner --method ptv1 --lr 3e-4,1e-3,3e-3
  ner --method probe --lr 1e-3,5e-3,2e-2
  ner --method lora --lr 3e-4,1e-3,3e-3
) > /dev/null &
(
  gen --method ft --lr 3e-5,1e-4,3e-4
  gen --method pt2 --lr 1e-2,3e-2,1e-1
  gen --method pt --lr 3e-2,1e-1,3e-1
  gen --method lora --lr 3e-4,1e-3,3e-3
) > /dev/null &
wait
echo "wrote $NER and $GEN"

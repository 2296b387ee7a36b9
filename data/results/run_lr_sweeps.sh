#!/usr/bin/env bash
# Learning-rate sweeps on dev, one per method and task; the picks become the methods' task_lrs (the runner's
# defaults) and so the LRs of the benchmark logs. One run per (method, rate), seed 0, two runs at a time with one
# torch thread each (xargs -P 2), so the two never compete for a core:
#   NER: minilm on a 600-sentence sample of data/ner/train.conll (--train-limit 600), 1.5 minutes a run,
#        scored on the 500 dev sentences.
#   gen: smollm2-135m on data/restaurants, 2 minutes a run, scored on the 150 dev inputs (613 references).
# Every method's grid brackets its pick (tests/test_runner.py: the best rate is never at an end of the
# grid; where it was, the grid was extended and the sweep resumed). About an hour on a 2-core CPU. Budgets are shorter than the benchmarks' (3 and 10 minutes): the best LR
# for a longer run is usually no higher, so read the picks as the upper end of a good range.
# RESUME=1 keeps the logs and skips the runs they already hold (an interrupted sweep goes on).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
NER=data/results/lr_sweep_ner.jsonl
GEN=data/results/lr_sweep_gen.jsonl
[ "${RESUME:-0}" = 1 ] || rm -f "$NER" "$GEN"
NER_RUN="$PY -m ptutor.experiments ner --model minilm --train data/ner/train.conll --train-limit 600 --dev data/ner/dev.conll --test data/ner/dev.conll --minutes 1.5 --seed 0 --quiet --out $NER"
GEN_RUN="$PY -m ptutor.experiments gen --model smollm2-135m --train data/restaurants/train.jsonl --dev data/restaurants/dev.jsonl --test data/restaurants/dev.jsonl --minutes 2 --seed 0 --quiet --out $GEN"
jobs() {  # "task method lr", slowest first
  for lr in 1e-2 3e-2 1e-1 3e-1; do echo "gen pt2 $lr"; done
  for lr in 3e-5 1e-4 3e-4 1e-3; do echo "gen ft $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2; do echo "gen lora $lr"; done
  for lr in 3e-2 1e-1 3e-1 1; do echo "gen pt $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2 3e-2; do echo "gen qlora $lr"; done
  for lr in 5e-5 1e-4 2e-4 5e-4 1e-3 3e-3; do echo "ner ft $lr"; done
  for lr in 1e-2 3e-2 5e-2 1e-1 2e-1; do echo "ner pt2 $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2; do echo "ner lora $lr"; done
  for lr in 1e-2 3e-2 1e-1 3e-1; do echo "ner pt $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2 3e-2 1e-1 3e-1; do echo "ner ptv1 $lr"; done
  for lr in 1e-3 5e-3 2e-2 1e-1; do echo "ner probe $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2 3e-2; do echo "ner qlora $lr"; done
  for lr in 1e-2 3e-2 1e-1 3e-1; do echo "ner pt2lora $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2 3e-2; do echo "ner adapter $lr"; done
  for lr in 1e-3 3e-3 1e-2 3e-2 1e-1; do echo "ner bitfit $lr"; done
  for lr in 3e-4 1e-3 3e-3 1e-2; do echo "gen adapter $lr"; done
  for lr in 1e-3 3e-3 1e-2 3e-2; do echo "gen bitfit $lr"; done
}
options() {  # per-task method options: SmolLM2 (Llama family) has no biases, so BitFit adds zero ones to train
  [ "$1 $2" = "gen bitfit" ] && echo "--add-biases true" || true
}
logged() {  # is (task, method, lr) in its log already?
  local log=$NER; [ "$1" = gen ] && log=$GEN
  [ -f "$log" ] && $PY -c "import json,sys; sys.exit(0 if any(r['method']=='$2' and r['lr']==float('$3') for r in map(json.loads, open('$log'))) else 1)"
}
jobs | while read -r task method lr; do
  logged "$task" "$method" "$lr" && continue
  if [ "$task" = gen ]; then echo "$GEN_RUN --method $method --lr $lr $(options gen "$method")"; else echo "$NER_RUN --method $method --lr $lr"; fi
done | xargs -P 2 -I CMD sh -c 'CMD > /dev/null'
echo "wrote $NER and $GEN"

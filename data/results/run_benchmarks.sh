#!/usr/bin/env bash
# The book's benchmark logs, made by the experiment runner at each method's swept learning rate
# (MethodConfig.task_lrs, picked by run_lr_sweeps.sh). Two queues side by side, one torch thread each,
# one process per run (so peak memory is per run):
#   gen_10min.jsonl        smollm2-135m on data/restaurants: 10 minutes of training per run, test = 300
#                          distinct inputs with 3-5 references each (corpus BLEU, ROUGE-L, mentions); seed 0.
#   ner_lowres_3min.jsonl  minilm on a 600-sentence sample of data/ner/train.conll, 3 minutes per run,
#                          test = the 1,000 test sentences; ft, pt2, pt, ptv1, lora over seeds 0-2, the probe once.
# About an hour on a 2-core CPU. `bash run_benchmarks.sh gen` (or `ner`) runs one queue only.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
GEN=data/results/gen_10min.jsonl
NER=data/results/ner_lowres_3min.jsonl
gen() { $PY -m ptutor.experiments gen --model smollm2-135m --train data/restaurants/train.jsonl \
          --test data/restaurants/test.jsonl --minutes 10 --quiet --out "$GEN" "$@"; }
ner() { $PY -m ptutor.experiments ner --model minilm --train data/ner/train.conll --train-limit 600 \
          --test data/ner/test.conll --minutes 3 --quiet --out "$NER" "$@"; }
gen_queue() {
  rm -f "$GEN"
  for method in pt2 ft lora pt; do gen --method $method --seed 0; done
}
ner_queue() {
  rm -f "$NER"
  for seed in 0 1 2; do
    for method in ft pt2 lora pt ptv1; do ner --method $method --seed $seed; done
  done
  ner --method probe --seed 0
}
case "${1:-both}" in
  gen) gen_queue > /dev/null ;;
  ner) ner_queue > /dev/null ;;
  *) gen_queue > /dev/null & ner_queue > /dev/null & wait ;;
esac
echo "done: ${1:-both}"

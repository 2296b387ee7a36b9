#!/usr/bin/env bash
# LoRA's rank against test F1 (chapter 5): minilm on the 600-sentence NER sample, 3 minutes a run, LoRA on
# query/value with alpha = 2r (so alpha / r = 2 at every rank, as at the swept r = 8) at the learning
# rate the dev sweep picked for r = 8, ranks 1, 4, 16 and 64 over seeds 0-2 (r = 8 is in
# ner_lowres_3min.jsonl). Two runs at a time, one torch thread each; about 25 minutes on a 2-core CPU.
# RESUME=1 keeps the log and skips runs it already holds.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
LOG=data/results/ner_lora_rank_3min.jsonl
[ "${RESUME:-0}" = 1 ] || rm -f "$LOG"
LR=$($PY -c "from ptutor.data import read_jsonl; from ptutor.results import pick_lr; print(pick_lr(read_jsonl('data/results/lr_sweep_ner.jsonl'), 'lora'))")
RUN="$PY -m ptutor.experiments ner --method lora --model minilm --train data/ner/train.conll --train-limit 600 --test data/ner/test.conll --minutes 3 --quiet --lr $LR --out $LOG"
for seed in 0 1 2; do for r in 1 4 16 64; do
  [ -f "$LOG" ] && $PY -c "import json,sys; sys.exit(0 if any(r['config']['r']==$r and r['seed']==$seed for r in map(json.loads, open('$LOG'))) else 1)" && continue
  echo "$RUN --seed $seed --r $r --alpha $((2 * r))"
done; done | xargs -P "${WORKERS:-2}" -I CMD sh -c 'CMD > /dev/null'
echo "wrote $LOG"

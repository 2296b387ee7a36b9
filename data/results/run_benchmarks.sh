#!/usr/bin/env bash
# The book's benchmark logs, made by the experiment runner at each method's swept learning rate
# (the dev sweep's pick, ptutor.results.pick_lr of run_lr_sweeps.sh's logs; the methods' task_lrs
# hold the same numbers, checked by tests/test_runner.py). Two runs at a time with one torch thread each
# (xargs -P 2), one process per run so peak memory is per run:
#   gen_10min.jsonl        smollm2-135m on data/restaurants: 10 minutes of training per run, test = 300
#                          distinct inputs with 3-5 references each (corpus BLEU, ROUGE-L, mentions); ft, pt2
#                          and lora over seeds 0-2, prompt tuning (pt) and QLoRA once.
#   ner_lowres_3min.jsonl  minilm on a 600-sentence sample of data/ner/train.conll, 3 minutes per run,
#                          test = the 1,000 test sentences; every NER method (ft, probe, pt, ptv1, pt2, lora, qlora, pt2lora)
#                          over seeds 0-2.
# About 2 hours on a 2-core CPU (each gen run is 10 minutes of training plus 3-4 of generation). RESUME=1 keeps the logs and skips the runs they already hold;
# ONLY=gen or ONLY=ner runs one task's jobs; WORKERS sets how many run at a time (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
GEN=data/results/gen_10min.jsonl
NER=data/results/ner_lowres_3min.jsonl
if [ "${RESUME:-0}" != 1 ]; then
  case "${ONLY:-}" in gen) rm -f "$GEN" ;; ner) rm -f "$NER" ;; *) rm -f "$GEN" "$NER" ;; esac
fi
GEN_RUN="$PY -m ptutor.experiments gen --model smollm2-135m --train data/restaurants/train.jsonl --test data/restaurants/test.jsonl --minutes 10 --quiet --out $GEN"
NER_RUN="$PY -m ptutor.experiments ner --model minilm --train data/ner/train.conll --train-limit 600 --test data/ner/test.conll --minutes 3 --quiet --out $NER"
pick() {  # the learning rate the dev sweep picked for (task, method): ptutor.results.pick_lr
  local sweep=data/results/lr_sweep_ner.jsonl; [ "$1" = gen ] && sweep=data/results/lr_sweep_gen.jsonl
  $PY -c "from ptutor.data import read_jsonl; from ptutor.results import pick_lr; print(pick_lr(read_jsonl('$sweep'), '$2'))"
}
jobs() {  # "task method seed": NER first (short runs), then generation
  for seed in 0 1 2; do for method in ft pt2 lora pt ptv1 probe qlora pt2lora; do echo "ner $method $seed"; done; done
  for seed in 0 1 2; do for method in pt2 ft lora; do echo "gen $method $seed"; done; done
  echo "gen pt 0"
  echo "gen qlora 0"
}
logged() {  # is (method, seed, lr) in the task's log already?
  local log=$NER; [ "$1" = gen ] && log=$GEN
  [ -f "$log" ] && $PY -c "import json,sys; sys.exit(0 if any(r['method']=='$2' and r['seed']==$3 and r['lr']==float('$4') for r in map(json.loads, open('$log'))) else 1)"
}
drop_stale() {  # with RESUME=1: remove runs made at a rate the sweep no longer picks (they would be redone)
  local log=$1 task=$2; [ -f "$log" ] || return 0
  local picks; picks=$(for m in $($PY -c "import json; print(' '.join(sorted({r['method'] for r in map(json.loads, open('$log'))})))"); do echo "$m=$(pick "$task" "$m")"; done | tr '\n' ' ')
  $PY -c "
import json, sys
picks = dict(p.split('=') for p in '$picks'.split())
rows = [json.loads(l) for l in open('$log')]
keep = [r for r in rows if r['lr'] == float(picks[r['method']])]
open('$log', 'w').writelines(json.dumps(r) + '\\n' for r in keep)
print(f'$log: dropped {len(rows) - len(keep)} runs made at a rate the sweep no longer picks', file=sys.stderr)"
}
drop_stale "$NER" ner
drop_stale "$GEN" gen
jobs | while read -r task method seed; do
  [ -n "${ONLY:-}" ] && [ "$task" != "$ONLY" ] && continue
  lr=$(pick "$task" "$method")
  logged "$task" "$method" "$seed" "$lr" && continue
  if [ "$task" = gen ]; then echo "$GEN_RUN --method $method --seed $seed --lr $lr"; else echo "$NER_RUN --method $method --seed $seed --lr $lr"; fi
done | xargs -P "${WORKERS:-2}" -I CMD sh -c 'CMD > /dev/null'
echo "wrote $GEN and $NER"

#!/usr/bin/env bash
# Chapter 7's shoot-out logs, made with the shoot-out command (python -m ptutor.experiments shootout), two runs
# at a time with one torch thread each, one process per run:
#   ner_lowres_3min.jsonl   the NER benchmark (run_benchmarks.sh made its first eight methods): the shoot-out
#                           adds the methods it lacks (Adapters, BitFit) for seeds 0-2; runs already logged are
#                           skipped. Table: shootout_ner.{csv,json,md}.
#   gen_10min.jsonl         the same for generation, seed 0; then Adapters, the one method there at or above
#                           fine-tuning with one seed, gets seeds 1 and 2, and later BitFit and prompt tuning
#                           too, and last QLoRA (~23 minutes a run with its slow 4-bit evaluation).
#                           Table: shootout_gen.{csv,json,md}.
#   gen_20min.jsonl         fine-tuning, P-Tuning v2, LoRA and Adapters with twice the budget, seed 0, then
#                           seeds 1-2 for fine-tuning and P-Tuning v2 (is the generation ranking a matter of
#                           budget?). Table: shootout_gen_20min.{csv,json,md}.
#   shootout_ner_1seed.jsonl  a fresh NER shoot-out of every method, seed 0, in a new log: its wall time is the
#                           "one seed in 30 minutes" check, and its scores against the seed-0 runs of
#                           ner_lowres_3min.jsonl show how far two runs of the same setting differ.
# About four hours on a 2-core CPU. Run nothing else meanwhile: a busy machine gives fewer steps per budget.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
R=data/results
$PY -m ptutor.experiments shootout --task ner --seeds 0,1,2 --workers 2 --threads 1 --out $R/ner_lowres_3min.jsonl --table $R/shootout_ner
$PY -m ptutor.experiments shootout --task gen --seeds 0 --workers 2 --threads 1 --out $R/gen_10min.jsonl --table $R/shootout_gen
$PY -m ptutor.experiments shootout --task gen --seeds 1,2 --methods adapter --workers 2 --threads 1 --out $R/gen_10min.jsonl --table $R/shootout_gen
$PY -m ptutor.experiments shootout --task gen --seeds 1,2 --methods bitfit,pt --workers 2 --threads 1 --out $R/gen_10min.jsonl --table $R/shootout_gen
$PY -m ptutor.experiments shootout --task gen --seeds 1,2 --methods qlora --workers 2 --threads 1 --out $R/gen_10min.jsonl --table $R/shootout_gen
$PY -m ptutor.experiments shootout --task gen --seeds 0 --out $R/gen_10min.jsonl --table $R/shootout_gen  # nothing left to run: the table of every method
$PY -m ptutor.experiments shootout --task gen --minutes 20 --seeds 0 --methods ft,pt2,lora,adapter --workers 2 --threads 1 --out $R/gen_20min.jsonl --table $R/shootout_gen_20min
$PY -m ptutor.experiments shootout --task gen --minutes 20 --seeds 1,2 --methods ft,pt2 --workers 2 --threads 1 --out $R/gen_20min.jsonl --table $R/shootout_gen_20min
$PY -m ptutor.experiments shootout --task gen --minutes 20 --seeds 0 --methods ft,pt2,lora,adapter --out $R/gen_20min.jsonl --table $R/shootout_gen_20min  # the table of all four
$PY -m ptutor.experiments shootout --task ner --seeds 0 --workers 2 --threads 1 --out $R/shootout_ner_1seed.jsonl

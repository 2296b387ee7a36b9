"""The recipe of each protocol log, the orchestrator's command lines that made it (`python -m ptutor.runs ...` with
the log as `--out`): `python data/results/recipes.py LOG [--workers 2 --threads 1]` runs them, skipping the runs the
log holds. tests/test_recipes.py checks that a log holds exactly what its recipe plans. The other logs: README.md.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RATES = "--rates data/results/cpu_step_rates.jsonl,data/results/{} --minutes {}"  # time-equivalent steps
WNUT = ("--train data/wnut17/train.conll --dev data/wnut17/dev.conll --test data/wnut17/test.conll --eval-every 75 "
        + RATES.format("wnut17_sweep_3min.jsonl", 3))
E2E = ("--train data/e2e/train.jsonl --dev data/e2e/dev.jsonl --test data/e2e/test.jsonl --eval-every 40 "
       + RATES.format("e2e_sweep_10min.jsonl", 10))
BUDGET = ("--train data/wnut17/train.conll --test data/wnut17/test.conll --curve-test true "
          + RATES.format("wnut17_sweep_3min.jsonl", 12))  # 4x the book's budget


def book_steps(task: str, method: str) -> int:
    """A method's book budget on a task: the steps it makes in the protocol's time (WNUT-17 3 minutes, E2E 10) of the
    reference CPU (ptutor.runs.time_equivalent_steps on the speed logs the recipes pass with --rates)."""
    from ptutor.jsonl import read_jsonl
    from ptutor.runs import time_equivalent_steps

    sweep, model, minutes = {"ner": ("wnut17_sweep_3min.jsonl", "minilm", 3),
                             "gen": ("e2e_sweep_10min.jsonl", "smollm2-135m", 10)}[task]
    rows = [r for log in ("cpu_step_rates.jsonl", sweep) for r in read_jsonl(ROOT / "data" / "results" / log)]
    return time_equivalent_steps(rows, task, method, model, minutes)


UNSEEN = ("--train data/e2e_unseen/train.jsonl --test data/e2e_unseen/test_seen.jsonl "
          "--also-test unseen=data/e2e_unseen/test_unseen.jsonl " + RATES.format("e2e_sweep_10min.jsonl", 10))
E2E_BUDGET = ("--train data/e2e/train.jsonl --test data/e2e/test.jsonl --curve-test true "
              + RATES.format("e2e_sweep_10min.jsonl", 40))  # 4x the book's budget

RECIPES = {
    # WNUT-17, a new head at the task's head rate (3e-2); the probe's runs, and P-Tuning v2's and (IA)3's at 3e-2 (where
    # the head's rate is the method's), are the one-rate log's configurations: those lines were copied from it
    "wnut17_steps.jsonl": [
        f"sweep ner --method ft --lrs 5e-5,1e-4,2e-4,5e-4,1e-3 --seeds 0 {WNUT}",
        f"sweep ner --method ft --lrs 2e-4,5e-4 --seeds 1 {WNUT}",
        f"sweep ner --method ft --lrs 2e-4 --seeds 2,3,4 {WNUT}",
        f"sweep ner --method pt2 --lrs 1e-2,3e-2,1e-1 --seeds 0 {WNUT}",
        f"sweep ner --method pt2 --lrs 3e-2 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method lora --lrs 1e-3,3e-3,1e-2 --seeds 0 {WNUT}",
        f"sweep ner --method lora --lrs 3e-3 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method ia3 --lrs 1e-2,3e-2,1e-1 --seeds 0 {WNUT}",
        f"sweep ner --method ia3 --lrs 3e-2 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method adapter --lrs 1e-3,3e-3,1e-2 --seeds 0 {WNUT}",
        f"sweep ner --method adapter --lrs 3e-3 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method dora --lrs 1e-3,3e-3,1e-2 --seeds 0 {WNUT}",
        f"sweep ner --method dora --lrs 3e-3 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method qlora --lrs 1e-3,3e-3,1e-2 --seeds 0 {WNUT}",
        f"sweep ner --method qlora --lrs 3e-3 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method bitfit --lrs 1e-3,3e-3,1e-2,3e-2 --seeds 0 {WNUT}",
        f"sweep ner --method bitfit --lrs 3e-3 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method probe --lrs 3e-3,1e-2,3e-2,1e-1 --seeds 0 {WNUT}",
        f"sweep ner --method probe --lrs 3e-2,1e-1 --seeds 1 {WNUT}",
        f"sweep ner --method probe --lrs 3e-2 --seeds 2,3,4 {WNUT}",
        f"sweep ner --method pt --lrs 1e-2,3e-2,1e-1,3e-1,1 --seeds 0 {WNUT}",  # 1: the first grid's pick was its top
        f"sweep ner --method pt --lrs 3e-1 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method ptv1 --lrs 3e-3,1e-2,3e-2 --seeds 0 {WNUT}",
        f"sweep ner --method ptv1 --lrs 1e-2 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method pt2lora --lrs 1e-2,3e-2,1e-1 --seeds 0 {WNUT}",
        f"sweep ner --method pt2lora --lrs 3e-2 --seeds 1,2,3,4 {WNUT}",
        f"sweep ner --method vera --lrs 3e-3,1e-2,3e-2,1e-1 --seeds 0 {WNUT}",
        f"sweep ner --method vera --lrs 3e-2,1e-1 --seeds 1 {WNUT}",
        f"sweep ner --method vera --lrs 3e-2 --seeds 2,3,4 {WNUT}",
    ],
    # WNUT-17, prompt tuning's length and initialisation (Lester et al., 2021, Figure 3): the protocol's run (P = 20,
    # random init, its pick 0.3, the head at 3e-2, 204 steps: wnut17_steps.jsonl) with one setting changed
    "wnut17_pt_ablation_steps.jsonl": [
        f"sweep ner --method pt --lrs 3e-1 --seeds 0,1,2 --num-virtual-tokens {p} {WNUT}" for p in (1, 5, 100)
    ] + [f"sweep ner --method pt --lrs 3e-1 --seeds 0,1,2 --init vocab {WNUT}"],
    # WNUT-17 budget curves: fine-tuning, P-Tuning v2, LoRA and the two strongest others at 1x (Adapters, QLoRA) at
    # their protocol picks for 4x the book's budget (12 minutes' worth of steps), the test scored every half of the
    # method's own book budget (its 3-minute steps // 2)
    "wnut17_budget_steps.jsonl": [
        f"shootout ner --methods {m} --seeds 0,1,2 --eval-every {book_steps('ner', m) // 2} {BUDGET}"
        for m in ("ft", "pt2", "lora", "adapter", "qlora")
    ],
    # E2E (data/e2e, seen names); about half of these runs were made on a GPU in fp32, the rest on the CPU
    "e2e_steps.jsonl": [
        f"sweep gen --method ft --lrs 3e-5,1e-4,3e-4,1e-3 --seeds 0,1 {E2E}",
        f"sweep gen --method ft --lrs 3e-4 --seeds 2,3,4 {E2E}",
        f"sweep gen --method bitfit --lrs 3e-3,1e-2,3e-2,1e-1 --seeds 0,1 {E2E}",
        f"sweep gen --method bitfit --lrs 1e-2 --seeds 2,3,4 {E2E}",
        f"sweep gen --method ia3 --lrs 3e-3,1e-2,3e-2,1e-1,3e-1 --seeds 0 {E2E}",
        f"sweep gen --method ia3 --lrs 1e-1 --seeds 1,2,3,4 {E2E}",
        f"sweep gen --method pt --lrs 0.1,0.3,1,3,10 --seeds 0,1 {E2E}",
        f"sweep gen --method pt --lrs 3 --seeds 2,3,4 {E2E}",
        f"sweep gen --method pt2 --lrs 3e-2,1e-1,3e-1 --seeds 0,1 {E2E}",
        f"sweep gen --method pt2 --lrs 1e-1 --seeds 2,3,4 {E2E}",
        f"sweep gen --method adapter --lrs 3e-4,1e-3,3e-3,1e-2 --seeds 0,1 {E2E}",
        f"sweep gen --method adapter --lrs 3e-3 --seeds 2,3,4 {E2E}",
        f"sweep gen --method lora --lrs 1e-3,3e-3,1e-2,3e-2 --seeds 0,1 {E2E}",
        f"sweep gen --method lora --lrs 3e-3 --seeds 2,3,4 {E2E}",
        f"sweep gen --method dora --lrs 1e-3,3e-3,1e-2,3e-2 --seeds 0 {E2E}",
        f"sweep gen --method dora --lrs 3e-3,1e-2 --seeds 1 {E2E}",
        f"sweep gen --method dora --lrs 1e-2 --seeds 2,3,4 {E2E}",
        f"sweep gen --method qlora --lrs 3e-3,1e-2,3e-2 --seeds 0 {E2E}",
        f"sweep gen --method qlora --lrs 3e-3,1e-2 --seeds 1 {E2E}",
        f"sweep gen --method qlora --lrs 1e-2 --seeds 2,3,4 {E2E}",
        f"sweep gen --method vera --lrs 3e-3,1e-2,3e-2,1e-1,3e-1 --seeds 0 {E2E}",
        f"sweep gen --method vera --lrs 1e-1,3e-1 --seeds 1 {E2E}",
        f"sweep gen --method vera --lrs 1e-1 --seeds 2,3,4 {E2E}",
    ],
    # E2E budget curves, as WNUT-17's: fine-tuning, P-Tuning v2, LoRA and the strongest other at 1x (Adapters; DoRA,
    # the next, not run yet) at their protocol picks for 4x the book's budget (40 minutes' worth of steps), the test
    # scored every half of the method's own book budget; seed 0 so far (45-52 minutes a run on the reference CPU)
    "e2e_budget_steps.jsonl": [
        f"shootout gen --methods {m} --seeds 0 --eval-every {book_steps('gen', m) // 2} {E2E_BUDGET}"
        for m in ("ft", "pt2", "lora", "adapter")
    ],
    # E2E with unseen names: fine-tuning, P-Tuning v2 and LoRA at their E2E picks and budgets, scored on seen and unseen
    # names
    "e2e_unseen_steps.jsonl": [
        f"shootout gen --methods ft,pt2,lora --seeds 0,1,2 {UNSEEN}",
    ],
}


def main(argv: list[str]) -> int:
    from ptutor.runs import main as runs

    log, extra = argv[0], argv[1:]
    for line in RECIPES[log]:
        status = runs([*line.split(), *extra, "--out", f"data/results/{log}"])
        if status:
            return status
    return 0


if __name__ == "__main__":
    import os

    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)  # the recipes name files relative to the book's root
    raise SystemExit(main(sys.argv[1:]))

"""Results at a glance: every method on the book's real tasks, read from the protocol logs, with an interval on every
ratio, the costs, the published claims with their verdicts and the published anchors. The book's results page is
written from `page()` when the book is built (book/_ext/results_page.py), and chapter 7 reads the same functions.

The protocol (book/protocol.md): each method at the rate its dev sweep picked, its new tagging head at the task's
head rate, for its time-equivalent step budget; a verdict follows the 95 % interval of a ratio of means
(`ptutor.results.ratio_interval`), and decides nothing on fewer than three seeds.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import read_jsonl
from ..methods import METHODS
from ..results import by_lr, dev_score, mean, pick_lr, ratio_text, score_cell, title, verdict


@dataclass(frozen=True)
class Benchmark:
    """One real data set under the protocol: its log, its metric, and which test set of a run it reads."""
    name: str
    log: str
    metric: str
    test_set: str | None = None  # a named extra test set (`record["test_sets"]`), else the run's main test set
    note: str = ""


BENCHMARKS = (
    Benchmark("WNUT-17", "data/results/wnut17_steps.jsonl", "f1",
              note="noisy-text NER, MiniLM, its own test set (emerging entities: few repeat from training)"),
    Benchmark("E2E", "data/results/e2e_steps.jsonl", "bleu",
              note="data-to-text, SmolLM2-135M, the book's cut: every test name also occurs in training"),
    Benchmark("E2E unseen", "data/results/e2e_unseen_steps.jsonl", "bleu", test_set="unseen",
              note="the same task trained without 5 restaurant names and 4 `near` values, scored on inputs that "
                   "carry them"),
    Benchmark("E2E seen", "data/results/e2e_unseen_steps.jsonl", "bleu",
              note="the models of E2E unseen, scored on the test inputs whose names training saw"),
)
SPEED_LOGS = ("data/results/cpu_step_rates.jsonl", "data/results/wnut17_sweep_3min.jsonl",
              "data/results/e2e_sweep_10min.jsonl")  # one-thread CPU runs: the step times budgets come from


def score(run: dict, bench: Benchmark) -> float:
    """A run's test score on the benchmark's test set."""
    return run["test_sets"][bench.test_set][bench.metric] if bench.test_set else run["primary"]


def picks(rows: list[dict]) -> dict[str, list[dict]]:
    """Each method's runs at its pick: the best mean dev score over shared seeds (`results.pick_lr`), or, in a log
    run at fixed rates with no dev set (the unseen-names runs reuse the picks), the method's one rate."""
    out = {}
    for m in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        groups = by_lr(rows, m)
        scored = any(dev_score(r) is not None for g in groups.values() for r in g)
        out[m] = groups[pick_lr(rows, m)] if scored else max(groups.values(), key=len)
    return out


def load(root: str | Path = ".") -> dict[str, dict[str, list[dict]]]:
    """{benchmark name: {method: runs at its pick}} for every benchmark whose log exists under `root`."""
    out = {}
    for b in BENCHMARKS:
        path = Path(root) / b.log
        if path.exists():
            out[b.name] = picks(read_jsonl(path))
    return out


def cpu_cost(root: str | Path, task: str, method: str) -> tuple[float | None, float | None]:
    """(median seconds per step, median process peak MB) of the method's one-thread CPU runs on the task: one
    measure for every method, from the runs its time-equivalent budget was computed from."""
    rows = [r for log in SPEED_LOGS if (Path(root) / log).exists() for r in read_jsonl(Path(root) / log)
            if r["task"] == task and r["method"] == method and r["device"] == "cpu"
            and r.get("hardware", {}).get("torch_threads") == 1]
    if not rows:
        return None, None
    return statistics.median(r["step_seconds"] for r in rows), statistics.median(r["peak_mb"] for r in rows)


def results_table(data: dict[str, dict[str, list[dict]]], baseline: str = "ft") -> str:
    """Markdown: one row per method, per benchmark its test score over seeds and its ratio to `baseline` with the
    95 % interval; '-' where the method was not run."""
    names = list(data)
    head = "| method | " + " | ".join(f"{n} | ×{title(baseline)}" for n in names) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(names)]
    for m in [m for m in METHODS if any(m in runs for runs in data.values())]:
        cells = []
        for n in names:
            bench = next(b for b in BENCHMARKS if b.name == n)
            runs, base = data[n].get(m), data[n].get(baseline)
            if not runs:
                cells += ["-", "-"]
                continue
            a = [score(r, bench) for r in runs]
            cells.append(score_cell(a, bench.metric))
            cells.append("1" if m == baseline or not base else ratio_text(a, [score(r, bench) for r in base]))
        lines.append(f"| {title(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(data: dict[str, dict[str, list[dict]]], root: str | Path = ".") -> str:
    """Markdown: trainable parameters (and share) on each backbone, CPU seconds per step and process peak."""
    lines = ["| method | trainable, MiniLM (WNUT-17) | trainable, SmolLM2 (E2E) | s/step, WNUT-17 | s/step, E2E | "
             "peak MB, WNUT-17 | peak MB, E2E | steps, WNUT-17 | steps, E2E |", "|---|" + "---:|" * 8]
    for m in [m for m in METHODS if any(m in runs for runs in data.values())]:
        cells = []
        for n in ("WNUT-17", "E2E"):
            r = data.get(n, {}).get(m, [None])[0]
            cells.append("-" if r is None else f"{r['trainable_params']:,} ({100 * r['trainable_params'] / r['total_params']:.2f}%)")
        costs = [cpu_cost(root, t, m) for t in ("ner", "gen")]
        cells += ["-" if s is None else f"{s:.2f}" for s, _ in costs]
        cells += ["-" if p is None else f"{p:,.0f}" for _, p in costs]
        for n in ("WNUT-17", "E2E"):
            r = data.get(n, {}).get(m, [None])[0]
            cells.append("-" if r is None else str(r["steps"]))
        lines.append(f"| {title(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Claim:
    """A published quality claim as a ratio test: does `a` reach `threshold` × `b` on the benchmarks named?"""
    text: str
    source: str
    a: str
    b: str = "ft"
    threshold: float = 1.0
    benchmarks: tuple[str, ...] = ("WNUT-17", "E2E", "E2E unseen")


CLAIMS = (
    Claim("P-Tuning v2 reaches 90% or more of fine-tuning", "walkthroughs of {cite}`liu2022ptuningv2`", "pt2",
          threshold=0.9),
    Claim("P-Tuning v2 comes within 0.97× of fine-tuning on NER", "{cite}`liu2022ptuningv2`, BERT-large on "
          "CoNLL-2003: 90.2 against 92.8", "pt2", threshold=0.97, benchmarks=("WNUT-17",)),
    Claim("prefix tuning beats fine-tuning on E2E", "{cite}`li2021prefix`, GPT-2 Medium: 69.7 against 68.2 BLEU; "
          "larger on unseen categories", "pt2", benchmarks=("E2E", "E2E unseen")),
    Claim("LoRA matches or beats fine-tuning", "{cite}`hu2022lora`, GPT-2 Medium on E2E: 70.4 against 68.2 BLEU",
          "lora"),
    Claim("QLoRA matches 16-bit LoRA (at or above 0.97×)", "{cite}`dettmers2023qlora`", "qlora", "lora", 0.97),
    Claim("Adapters come within 0.4% of fine-tuning", "{cite}`houlsby2019adapters`", "adapter", threshold=0.996),
    Claim("BitFit is competitive with fine-tuning on small data (at or above 0.98×)", "{cite}`benzaken2022bitfit`",
          "bitfit", threshold=0.98),
    Claim("(IA)³ outperforms LoRA", "(IA)³ paper {cite}`liu2022ia3`, T0-3B", "ia3", "lora"),
    Claim("DoRA outperforms LoRA", "{cite}`liu2024dora`, LLaMA-7B commonsense reasoning: +3.7", "dora", "lora"),
    Claim("VeRA matches LoRA with far fewer trained numbers (at or above 0.97×)", "{cite}`kopiczko2024vera`, GLUE "
          "and E2E", "vera", "lora", 0.97),
)


def claim_row(claim: Claim, data: dict[str, dict[str, list[dict]]]) -> tuple[list[str], str]:
    """(per-benchmark readings 'E2E 0.95× [0.92, 0.99] (5 and 5 seeds): does not hold', overall verdict): holds only if
    it holds on every benchmark measured, does not hold if it fails on any, else not decided."""
    readings, verdicts = [], []
    for name in claim.benchmarks:
        runs = data.get(name, {})
        if claim.a not in runs or claim.b not in runs:
            continue
        bench = next(b for b in BENCHMARKS if b.name == name)
        a, b = [score(r, bench) for r in runs[claim.a]], [score(r, bench) for r in runs[claim.b]]
        v = verdict(a, b, claim.threshold)
        verdicts.append(v)
        readings.append(f"{name} {ratio_text(a, b)} ({len(a)} and {len(b)} seeds): {v}")
    if not verdicts:
        return ["not measured here"], "cannot be tested here"
    overall = "does not hold" if "does not hold" in verdicts else "holds" if set(verdicts) == {"holds"} else \
        "not decided"
    return readings, overall


def claims_table(data: dict[str, dict[str, list[dict]]], claims=CLAIMS) -> str:
    lines = ["| claim | source | measured here (ratio, 95 % interval) | verdict |", "|---|---|---|---|"]
    for c in claims:
        readings, overall = claim_row(c, data)
        lines.append(f"| {c.text} | {c.source} | {'; '.join(readings)} | **{overall}** |")
    return "\n".join(lines)


ANCHORS = """| setting | fine-tuning | prefix / P-Tuning v2 | LoRA | source |
|---|---:|---:|---:|---|
| BERT-large, CoNLL-2003 NER (F1) | 92.8 | 90.2 | - | {cite}`liu2022ptuningv2`, table 3 |
| GPT-2 Medium, E2E (BLEU, official test set) | 68.2 | 69.7 | 70.4 | {cite}`li2021prefix`, table 1; {cite}`hu2022lora`, table 3 |"""


def plot(data: dict[str, dict[str, list[dict]]], path: str | Path, root: str | Path = ".") -> None:
    """Quality against cost: per benchmark, each method's mean test score against its CPU seconds per step (error
    bars: s.d. over seeds), saved as an SVG at `path` (its text at 10 pt or more)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("WNUT-17", "E2E", "E2E unseen") if n in data]
    if not names:
        return
    rows = (len(names) + 1) // 2  # two panels a row: at the column's width the text stays at its size
    fig, axes = plt.subplots(rows, 2, figsize=(6.6, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        bench = next(b for b in BENCHMARKS if b.name == name)
        task = "ner" if bench.metric == "f1" else "gen"
        for i, (m, runs) in enumerate(data[name].items()):
            seconds, _ = cpu_cost(root, task, m)
            if seconds is None:
                continue
            s = [score(r, bench) for r in runs]
            ax.errorbar(seconds, mean(s), yerr=statistics.stdev(s) if len(s) > 1 else 0, fmt="o", color=f"C{i % 10}",
                        capsize=3)
            ax.annotate(title(m), (seconds, mean(s)), fontsize=10, xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel("CPU seconds per step (1 thread)", fontsize=10)
        ax.set_ylabel(f"test {'F1' if bench.metric == 'f1' else 'BLEU'}", fontsize=10)
        ax.set_title(name, fontsize=11)
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)


def page(root: str | Path = ".", figure: str = "results_quality_cost.svg") -> str:
    """The body of the results page as MyST markdown (book/results.md holds its title and introduction); writes the
    figure next to the page (`root/book/figure`)."""
    data = load(root)
    seeds = {n: sorted({len(v) for v in runs.values()}) for n, runs in data.items()}
    plot(data, Path(root) / "book" / figure, root)
    figure_block = f"""```{{figure}} {figure}
:alt: test score against CPU seconds per step, one point per method, for each benchmark

Quality against cost: each point one method at its pick (error bars: s.d. over seeds).
```""" if data else "(No protocol log yet: the figure appears when one exists.)"
    notes = "\n".join(f"- **{b.name}**: {b.note} (`{b.log}`; seeds per method: "
                      f"{', '.join(map(str, seeds.get(b.name, []))) or 'none yet'})" for b in BENCHMARKS)
    return f"""{notes}

## Quality

Test score, mean ± sample standard deviation over seeds; beside it the ratio to full fine-tuning with its 95 %
interval (Fieller's, with Welch's degrees of freedom). A ratio whose interval holds 1 is no evidence either way.

{results_table(data)}

## Cost

Trainable parameters on each backbone, and one measure of time and memory for every method: the median over the
method's one-thread CPU runs on a 2-core AMD EPYC (the runs its step budget was computed from) of the seconds
per step and of the process's peak resident memory (which includes Python, torch and the loaded model: it
cannot show what a method saves inside a step; chapter 6 measures that). These runs used the per-tensor AdamW;
ptutor now builds the fused one, whose steps are shorter where many tensors train, fine-tuning's most.

{cost_table(data, root)}

{figure_block}

## The published claims, checked

A claim holds only where the whole 95 % interval of its ratio clears the threshold on every benchmark it was
measured on; it does not hold where the interval lies below on any; otherwise it is not decided. Chapter 7
discusses each one.

{claims_table(data)}

## Published anchors

What the papers report at full scale (larger models, full training sets, GPUs). The book's numbers are not
comparable to these in absolute terms (another test set, 12 times less training data, a 22-135 M model trained
for minutes on a CPU); only the comparisons between methods carry over, and only as far as the intervals above
allow.

{ANCHORS}
"""

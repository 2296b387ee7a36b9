"""Results logs in, readings out: pool runs over seeds, pick a learning rate on dev, format a score, draw curves.

A results log is JSON lines, one stamped run each (ptutor.experiments.run). Every table, pick and plot in
the book and in the commands reads logs through these functions, so one rule decides each of them:

- seeds pool as mean ± sample standard deviation (`spread`), formatted by `score_cell`;
- a learning rate is picked on the **mean dev score over seeds** at that rate (`pick_lr`); the test scores of
  the runs at the picked rate are the benchmark (`picked_runs`);
- a ratio between two methods comes with a 95 % interval (Fieller's, `ratio_interval`), and a verdict follows the
  interval: it decides only when the whole interval is on one side of the threshold (`verdict`); two scores of
  the same runs (two test sets) pair instead (`paired_ratio_interval`);
- a budget curve is read off long runs made with curve_test (`at_budget`, `budget_table`).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

COLUMN_TITLES = {"f1": "F1", "bleu": "BLEU", "rouge_l": "ROUGE-L", "mentions_all": "states all values",
                 "tokens_per_second": "tokens/s"}  # how tables name each metric
DIGITS = {"bleu": 1, "rouge_l": 1}  # BLEU and ROUGE-L are 0-100 numbers; F1 and shares are 0-1


def digits(metric: str) -> int:
    """Decimal places a metric is printed with."""
    return DIGITS.get(metric, 3)


def spread(values: list[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    return sum(values) / len(values)


def format_score(mean_: float, spread_: float, seeds: int, metric: str, count: bool = True) -> str:
    """The one rule for printing a score over seeds: `0.412 ± 0.006 (3)` (`count=False`: without the count, for
    tables with a seeds column), and `0.412 (1 seed)` for a single run, which is a sketch."""
    d = digits(metric)
    if seeds == 1:
        return f"{mean_:.{d}f} (1 seed)"
    return f"{mean_:.{d}f} ± {spread_:.{d}f}" + (f" ({seeds})" if count else "")


def score_cell(values: list[float], metric: str) -> str:
    """One table cell for a score over seeds: `0.412 ± 0.006 (3)`, or `0.412 (1 seed)`: one seed is a sketch."""
    return format_score(mean(values), spread(values), len(values), metric)


def title(method: str) -> str:
    """A method's name in tables (its config's title)."""
    from .methods import METHODS  # here, not at the top: reading a log needs no torch until a table is named

    return METHODS[method].config_class.title or method if method in METHODS else method


def run_name(row: dict) -> str:
    """A short readable name for one run's setting: the method's title plus the options that differ from its
    defaults (derived fields such as the token ids an initialisation drew are not options)."""
    from .methods import METHODS

    cls = METHODS[row["method"]].config_class
    defaults = cls().to_dict()
    changed = [f"{k}={v}" for k, v in cls.options(row["config"]).items() if defaults.get(k) != v]
    return title(row["method"]) + (f" ({', '.join(changed)})" if changed else "")


def dev_score(row: dict) -> float | None:
    """The run's final dev score of its task metric, if it was scored on dev."""
    return row.get(f"dev_{row['metric']}")


def by_lr(rows: list[dict], method: str) -> dict[float, list[dict]]:
    """The method's runs grouped by learning rate (rates in increasing order)."""
    groups: dict[float, list[dict]] = {}
    for r in sorted((r for r in rows if r["method"] == method), key=lambda r: (r["lr"], r["seed"])):
        groups.setdefault(r["lr"], []).append(r)
    return groups


def pick_seeds(rows: list[dict], method: str) -> list[int]:
    """The seeds a pick is made on: the largest set of seeds that at least two rates of the method share (all
    rates' common seeds in a full sweep; the second seed of a sweep that gave only its best rates one). A rate
    without all of them drops out of the pick, so no rate wins on a lucky extra seed."""
    sets = [frozenset(r["seed"] for r in g) for g in by_lr(rows, method).values()]
    if len(sets) == 1:
        return sorted(sets[0])
    shared = {a & b for i, a in enumerate(sets) for b in sets[i + 1:]}
    return sorted(max(shared, key=lambda s: (len(s), [-x for x in sorted(s)])))


def pick_lr(rows: list[dict], method: str, seeds: list[int] | None = None) -> float:
    """The learning rate with the best mean dev score over `seeds` (default `pick_seeds`), among the rates run
    with every one of them."""
    groups = by_lr(rows, method)
    if not groups:
        raise ValueError(f"no runs of method {method!r} in the log")
    if seeds is None:
        seeds = pick_seeds(rows, method)
    scored = {}
    for lr, runs in groups.items():
        runs = [r for r in runs if r["seed"] in seeds]
        if runs and len(runs) == len(seeds) and all(dev_score(r) is not None for r in runs):
            scored[lr] = mean([dev_score(r) for r in runs])
    if not scored:
        raise ValueError(f"no rate of method {method!r} has dev scores for seeds {seeds}: run the sweep with a dev set")
    return max(scored, key=scored.get)


def at_edge(rows: list[dict], method: str) -> bool:
    """Is the picked rate at an end of the grid? Then the grid does not bracket the best rate: extend it."""
    lrs = list(by_lr(rows, method))
    return len(lrs) > 1 and pick_lr(rows, method) in (lrs[0], lrs[-1])


def picked_runs(rows: list[dict], methods: list[str] | None = None) -> dict[str, list[dict]]:
    """For each method (in log order), its runs at the picked rate: the benchmark runs."""
    methods = methods or list(dict.fromkeys(r["method"] for r in rows))
    return {m: by_lr(rows, m)[pick_lr(rows, m)] for m in methods}


def setting(run: dict) -> tuple:
    """What a run's setting is, the seed aside: method, rate, head rate and the method's options (derived
    fields such as the token ids an initialisation drew are not options: MethodConfig.options)."""
    from .methods import METHODS

    config = run["config"]
    config = METHODS[run["method"]].config_class.options(config) if run["method"] in METHODS else \
        {k: v for k, v in config.items() if k != "method"}
    return run["method"], run["lr"], run.get("head_lr"), json.dumps(config, sort_keys=True)


def best_setting(rows: list[dict], method: str, seeds: tuple[int, ...] = (0, 1)) -> list[dict]:
    """The runs of `method`'s best setting among all in `rows` (rates, head rates, options), picked on the mean
    dev score over `seeds`, never on test: each method at its best, however many recipes it was given."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["method"] == method:
            groups.setdefault(setting(r), []).append(r)

    def score(runs):
        dev = [dev_score(r) for r in runs if r["seed"] in seeds and dev_score(r) is not None]
        return mean(dev) if len(dev) == len(seeds) else float("-inf")
    if not groups or max(map(score, groups.values())) == float("-inf"):
        raise ValueError(f"no setting of {method!r} has dev scores for seeds {list(seeds)}")
    return max(groups.values(), key=score)


def summarize(rows: list[dict]) -> list[dict]:
    """Pool the runs of each setting (`setting`: method, rate, head rate, options; task, backbone and data size
    too) over their seeds, in the order of each setting's first run. Per setting: its name (`run_name`), the test
    score's mean and `spread` and the seeds, and the means of steps, step time, peak memory (None where a run
    lacks it), tokens per second and the extra metrics (ROUGE-L, values stated)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("task"), r.get("model"), r.get("train_items"), *setting(r)), []).append(r)
    out = []
    for runs in groups.values():
        metric = runs[0].get("metric", "f1")
        scores = [r.get("primary", r.get(metric)) for r in runs]

        def avg(key, runs=runs):
            values = [r.get(key) for r in runs]
            return None if any(v is None for v in values) else mean(values)
        out.append({"name": run_name(runs[0]), "method": runs[0]["method"], "metric": metric, "lr": runs[0]["lr"],
                    "seeds": [r.get("seed") for r in runs], "score": mean(scores), "spread": spread(scores),
                    "steps": avg("steps"), "step_seconds": avg("step_seconds"), "peak_mb": avg("peak_mb"),
                    "tokens_per_second": avg("tokens_per_second"),
                    "extra": {k: v for k in ("rouge_l", "mentions_all") if (v := avg(k)) is not None},
                    "checkpoint_mb": None if (ckpt := avg("checkpoint_bytes")) is None else ckpt / 2**20,
                    "trainable_params": runs[0]["trainable_params"], "total_params": runs[0]["total_params"]})
    return out


def results_table(rows: list[dict], baseline: str = "ft", extra: tuple[str, ...] = ()) -> str:
    """Markdown: one line per setting (`summarize`), with the test score and step time relative to the best
    `baseline` setting, and the means of any `extra` metrics (e.g. "rouge_l", "mentions_all"); "-" where a
    run did not record a value."""
    groups = summarize(rows)
    metric = groups[0]["metric"] if groups else "f1"
    base = [g for g in groups if g["method"] == baseline]
    best = max(base, key=lambda g: g["score"]) if base else None
    name = COLUMN_TITLES.get(metric, metric)
    head = f"| run | LR | trainable (share) | seeds | steps | s/step | peak MB | {name} (test) |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    for k in extra:
        head, rule = head + f" {COLUMN_TITLES.get(k, k)} |", rule + "---:|"
    if best:
        head, rule = head + f" {name} / best {baseline} | step / {baseline} |", rule + "---:|---:|"
    lines = [head, rule]
    for g in groups:
        score = format_score(g["score"], g["spread"], len(g["seeds"]), metric, count=False)
        line = (f"| {g['name']} | {g['lr']:g} | {g['trainable_params']:,} "
                f"({100 * g['trainable_params'] / g['total_params']:.2f}%) | {len(g['seeds'])} | {g['steps']:.0f} | "
                f"{g['step_seconds']:.3f} | {_number(g['peak_mb'], ',.0f')} | {score} |")
        for k in extra:
            line += f" {_number(g['extra'].get(k), '.0%' if k == 'mentions_all' else '.1f')} |"
        if best:
            ratio = f"{g['score'] / best['score']:.2f}" if best["score"] else "-"  # a baseline at zero: no ratio
            line += f" {ratio} | {g['step_seconds'] / best['step_seconds']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def sweep_table(rows: list[dict], titles: dict[str, str] | None = None) -> str:
    """Markdown: per method, the mean dev score (± s.d. over seeds) at each rate, the pick in bold; a method is
    named by its title unless `titles` gives another name (as in every table here)."""
    titles = titles or {}
    metric = rows[0]["metric"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lrs = sorted({r["lr"] for r in rows})
    one_seed = all(len(runs) == 1 for m in methods for runs in by_lr(rows, m).values())
    lines = ["| method | " + " | ".join(f"{lr:g}" for lr in lrs) + " | picked |", "|---|" + "---:|" * (len(lrs) + 1)]
    for m in methods:
        groups, best = by_lr(rows, m), pick_lr(rows, m)
        cells = []
        for lr in lrs:
            scores = [dev_score(r) for r in groups.get(lr, []) if dev_score(r) is not None]
            cell = "" if not scores else f"{scores[0]:.{digits(metric)}f}" if one_seed else score_cell(scores, metric)
            cells.append(f"**{cell}**" if lr == best else cell)
        lines.append(f"| {titles.get(m, title(m))} | " + " | ".join(cells) + f" | {best:g} |")
    if one_seed:  # said once under the table instead of in every cell
        lines.append("\nOne seed at every rate: a sketch of where the best rate lies, not a measurement of it.")
    return "\n".join(lines)


def plot_sweep(rows: list[dict], ax=None):
    """Mean dev score (over seeds) against learning rate (log scale), one line per method; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    metric = rows[0]["metric"]
    for m in dict.fromkeys(r["method"] for r in rows):
        points = [(lr, mean([dev_score(r) for r in runs])) for lr, runs in by_lr(rows, m).items()
                  if all(dev_score(r) is not None for r in runs)]
        ax.plot(*zip(*points), marker="o", label=title(m))
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def t_quantile(p: float, df: float) -> float:
    """The p-quantile (p > 0.5) of Student's t with `df` degrees of freedom (any df > 0, not only whole ones):
    bisection on the CDF, which is integrated from the density with Simpson's rule. No SciPy needed."""
    if not 0.5 < p < 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df > 0, got p={p}, df={df}")
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float, n: int = 2000) -> float:  # P(T <= x) for x >= 0: 1/2 + the density's integral on [0, x]
        h = x / n
        f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(n + 1)]
        return 0.5 + h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))
    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, 2 * high
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def _fieller_set(qa: float, qb: float, qc: float) -> tuple[float, float]:
    """The ratios r with qa r^2 + qb r + qc <= 0 (Fieller's set) as (low, high): a bounded interval when qa > 0 and
    the quadratic has real roots, otherwise (-inf, inf), the denominator's mean not clearly away from zero."""
    disc = qb ** 2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return -math.inf, math.inf
    root = math.sqrt(disc)
    return (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)


def ratio_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) / mean(b) and its `level` confidence interval by Fieller's theorem, seeds of a and b independent,
    with Welch's degrees of freedom for the difference mean(a) - ratio * mean(b) taken at the estimate.

    Fieller's interval is every ratio r that a t-test would not reject: (mean(a) - r mean(b))^2 <= t^2 (va + r^2 vb),
    va and vb the squared standard errors. When mean(b) itself is not clearly away from zero the set is unbounded:
    the interval is then (-inf, inf). Needs at least two seeds on each side."""
    if min(len(a), len(b)) < 2:
        raise ValueError(f"an interval needs at least two seeds on each side, got {len(a)} and {len(b)}")
    ma, mb = mean(a), mean(b)
    va, vb = spread(a) ** 2 / len(a), spread(b) ** 2 / len(b)
    ratio = ma / mb
    if va == 0 and vb == 0:
        return ratio, ratio, ratio
    df = (va + ratio ** 2 * vb) ** 2 / (va ** 2 / (len(a) - 1) + ratio ** 4 * vb ** 2 / (len(b) - 1))
    t2 = t_quantile((1 + level) / 2, df) ** 2
    # the quadratic (mb^2 - t2 vb) r^2 - 2 ma mb r + (ma^2 - t2 va) <= 0
    return ratio, *_fieller_set(mb ** 2 - t2 * vb, -2 * ma * mb, ma ** 2 - t2 * va)


def paired_ratio_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) / mean(b) and its `level` confidence interval by Fieller's theorem when a[i] and b[i] come from the same
    run (a run's score on two test sets, say): every ratio r that a one-sample t-test on the run-by-run differences
    a[i] - r b[i] would not reject, with n - 1 degrees of freedom. Pairing removes what the runs share, so the
    interval is narrower than `ratio_interval`'s when a run's two scores move together, but n - 1 degrees of freedom
    (2 for three runs) can make it wider when they do not. (-inf, inf) when the set is unbounded."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired interval needs two or more pairs, got {len(a)} and {len(b)} values")
    n, ma, mb = len(a), mean(a), mean(b)
    saa, sbb = spread(a) ** 2, spread(b) ** 2
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (n - 1)
    ratio = ma / mb
    t2n = t_quantile((1 + level) / 2, n - 1) ** 2 / n
    # (ma - r mb)^2 <= t2/n (saa - 2 r sab + r^2 sbb), as a quadratic in r
    return ratio, *_fieller_set(mb ** 2 - t2n * sbb, -2 * (ma * mb - t2n * sab), ma ** 2 - t2n * saa)


def verdict(a: list[float], b: list[float], threshold: float = 1.0, level: float = 0.95) -> str:
    """Does mean(a) reach `threshold` x mean(b)? "holds" when the whole 95 % interval of the ratio (`ratio_interval`)
    is at or above the threshold, "does not hold" when it is all below, "not decided" otherwise, and always when
    either side has fewer than three seeds (one or two are a sketch: their spread says nothing)."""
    if min(len(a), len(b)) < 3:
        return "not decided"
    _, low, high = ratio_interval(a, b, level)
    if low >= threshold:
        return "holds"
    return "does not hold" if high < threshold else "not decided"


def ratio_text(a: list[float], b: list[float], level: float = 0.95, paired: bool = False) -> str:
    """A ratio of means with its interval, as tables print it: `1.04× [0.93, 1.16]` (`[-inf, inf]` when unbounded),
    or `1.04× (sketch)` when either side has fewer than two seeds. `paired`: a[i] and b[i] come from one run
    (`paired_ratio_interval`)."""
    if min(len(a), len(b)) < 2:
        return f"{mean(a) / mean(b):.2f}× (sketch)"
    ratio, low, high = (paired_ratio_interval if paired else ratio_interval)(a, b, level)
    return f"{ratio:.2f}× [{low:.2f}, {high:.2f}]"


def curve_at(run: dict, *, step: int | None = None, seconds: float | None = None,
             split: str = "dev") -> float | None:
    """The `split` score ("dev", or "test" in a run made with curve_test) of a run's learning curve at the last point
    at or before `step` (or `seconds` of training): a step-matched or time-matched reading. None when the curve has
    no point that early."""
    key, limit = ("step", step) if step is not None else ("seconds", seconds)
    points = [p for p in run.get("curve", []) if p[key] <= limit]
    return points[-1][f"{split}_{run['metric']}"] if points else None


def at_budget(runs: list[dict], steps: int) -> list[float]:
    """Each long run's test score after `steps` (`curve_at` on a run made with curve_test): one long run gives every
    shorter budget."""
    return [curve_at(r, step=steps, split="test") for r in runs]


def budget_table(long_runs: dict[str, list[dict]], protocol: dict[str, list[dict]],
                 multiples: tuple[float, ...] = (0.5, 1, 2, 3, 4), titles: dict[str, str] | None = None) -> str:
    """Markdown: each method's test score (mean ± s.d. over seeds) at k times its book budget (the steps of its
    `protocol` runs), read off its `long_runs`, and in the last column the protocol's own runs at 1x."""
    titles, metric = titles or {}, next(iter(long_runs.values()))[0]["metric"]
    lines = ["| method | 1× (steps) | " + " | ".join(f"{k:g}×" for k in multiples) + " | protocol, 1× |",
             "|---|---:|" + "---:|" * (len(multiples) + 1)]
    for m, runs in long_runs.items():
        steps = protocol[m][0]["steps"]
        cells = [score_cell(at_budget(runs, round(k * steps)), metric) for k in multiples]
        lines.append(f"| {titles.get(m, title(m))} | {steps} | " + " | ".join(cells)
                     + f" | {score_cell([r['primary'] for r in protocol[m]], metric)} |")
    return "\n".join(lines)


def budget_ratio_table(long_runs: dict[str, list[dict]], protocol: dict[str, list[dict]],
                       multiples: tuple[float, ...] = (1, 2, 4), baseline: str = "ft",
                       titles: dict[str, str] | None = None) -> str:
    """Markdown: each method's test score over `baseline`'s at the same multiple of their book budgets (the same CPU
    time), with its 95 % interval (`ratio_text`) and the verdict on "reaches the baseline" (`verdict`)."""
    titles, base = titles or {}, long_runs[baseline]
    lines = ["| method | " + " | ".join(f"{k:g}×" for k in multiples) + " |", "|---|" + "---|" * len(multiples)]
    for m, runs in long_runs.items():
        if m == baseline:
            continue
        pairs = [(at_budget(runs, round(k * protocol[m][0]["steps"])),
                  at_budget(base, round(k * protocol[baseline][0]["steps"]))) for k in multiples]
        lines.append(f"| {titles.get(m, title(m))} | "
                     + " | ".join(f"{ratio_text(a, b)}: {verdict(a, b)}" for a, b in pairs) + " |")
    return "\n".join(lines)


def plot_budget_curves(long_runs: dict[str, list[dict]], protocol: dict[str, list[dict]], ax=None,
                       titles: dict[str, str] | None = None):
    """Test score against training examples seen (thousands), mean ± s.d. over each method's long runs, with its
    protocol runs at 1x as an open square (mean ± s.d.): where a budget curve levels off. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.6, 3.6))
    titles = titles or {}
    for i, (m, runs) in enumerate(long_runs.items()):
        key = f"test_{runs[0]['metric']}"
        points = list(zip(*[[p[key] for p in r["curve"]] for r in runs]))  # one tuple of seeds per point
        seen = [p["step"] * runs[0]["batch_size"] / 1000 for p in runs[0]["curve"]]
        mu, sd = [mean(list(v)) for v in points], [spread(list(v)) for v in points]
        ax.plot(seen, mu, marker="o", ms=3, color=f"C{i}", label=titles.get(m, title(m)))
        ax.fill_between(seen, [a - b for a, b in zip(mu, sd)], [a + b for a, b in zip(mu, sd)], color=f"C{i}", alpha=0.15)
        proto = [r["primary"] for r in protocol[m]]
        ax.errorbar([protocol[m][0]["steps"] * runs[0]["batch_size"] / 1000], [mean(proto)],
                    yerr=[spread(proto)], fmt="s", mfc="white", color=f"C{i}", capsize=3)
    ax.set_xlabel("training examples seen (thousands)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    return ax


def plot_curves(runs: dict[str, list[dict]], x: str = "step", y: str | None = None, ax=None,
                titles: dict[str, str] | None = None):
    """Learning curves of logged runs, one colour per method and one line per seed: `y` is a curve key (default
    the task's dev metric; "loss" for the training loss), `x` is "step" or "seconds". Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    titles = titles or {}
    for i, (method, rs) in enumerate(runs.items()):
        color = f"C{i}"
        key = y or f"dev_{rs[0]['metric']}"
        for j, r in enumerate(rs):
            pts = [(p[x], p[key]) for p in r.get("curve", []) if p.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), color=color, alpha=0.8, lw=1.2, marker="o", ms=3,
                        label=titles.get(method, title(method)) if j == 0 else None)
    ax.set_xlabel("training steps" if x == "step" else "training seconds")
    ax.set_ylabel(y or "dev score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def benchmark_table(runs: dict[str, list[dict]], baseline: str = "ft", titles: dict[str, str] | None = None,
                    cost: bool = True) -> str:
    """Markdown: one row per method (its runs at its picked rate): rate, seeds, mean steps, dev and test score over
    seeds, the test score relative to `baseline` with its 95 % interval (`ratio_text`), and with `cost` the step time
    and peak memory (leave it off when the runs were made on different machines, as in a step-matched log)."""
    titles = titles or {}
    metric = next(iter(runs.values()))[0]["metric"]
    base = runs.get(baseline)
    name = titles.get(baseline, title(baseline))
    head = "| method | LR | trainable | steps |" + (" s/step | peak MB |" if cost else "") + " dev | test |"
    head += (f" test / {name} |" + (f" step / {name} |" if cost else "")) if base else ""
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    for m, rs in runs.items():
        test = [r["primary"] for r in rs]
        dev = [dev_score(r) for r in rs if dev_score(r) is not None]
        line = f"| {titles.get(m, title(m))} | {rs[0]['lr']:g} | {rs[0]['trainable_params']:,} | {mean([r['steps'] for r in rs]):.0f} |"
        if cost:
            line += f" {mean([r['step_seconds'] for r in rs]):.3f} | {mean([r['peak_mb'] for r in rs]):,.0f} |"
        line += f" {score_cell(dev, metric) if dev else '-'} | {score_cell(test, metric)} |"
        if base:
            line += f" {'1' if rs is base else ratio_text(test, [r['primary'] for r in base])} |"
            if cost:
                step = mean([r["step_seconds"] for r in rs]) / mean([r["step_seconds"] for r in base])
                line += f" {step:.2f} |"
        lines.append(line)
    return "\n".join(lines)


# --- the shoot-out's tables: one row per setting, with provenance (python -m ptutor.runs shootout) ---------

def setting_rows(rows: list[dict]) -> list[dict]:
    """One record per setting of the log (`ptutor.results.summarize`: a method's runs pool over seeds only when
    their rate and options agree), the methods in the shoot-out's order: cost columns as means over seeds, the
    metric as mean and spread, None where a run did not record a value."""
    from .methods import METHODS

    rank = {m: i for i, m in enumerate(METHODS)}  # the registry's order (ptutor/methods/__init__.py)
    out = []
    for g in sorted(summarize(rows), key=lambda g: rank.get(g["method"], len(rank))):
        out.append({"method": g["method"], "title": g["name"], "lr": g["lr"], "trainable_params": g["trainable_params"],
                    "trainable_pct": round(100 * g["trainable_params"] / g["total_params"], 4),
                    "seeds": sorted(g["seeds"]), "steps": round(g["steps"]),
                    "step_seconds": round(g["step_seconds"], 4),
                    "tokens_per_second": None if g["tokens_per_second"] is None else round(g["tokens_per_second"], 1),
                    "peak_mb": None if g["peak_mb"] is None else round(g["peak_mb"], 1),
                    "checkpoint_mb": None if g["checkpoint_mb"] is None else round(g["checkpoint_mb"], 3),
                    "metric": g["metric"], "mean": round(g["score"], 4), "spread": round(g["spread"], 4)})
    return out


def provenance(rows: list[dict]) -> dict:
    """What made the log: hardware, versions, seeds, budget, and when its time-stamped runs ran."""
    hw = sorted({json.dumps(r["hardware"], sort_keys=True) for r in rows})
    vs = sorted({json.dumps(r["versions"], sort_keys=True) for r in rows})
    return {"task": rows[0]["task"], "model": rows[0]["model"], "budget": budget_text(rows),
            "train_items": rows[0]["train_items"], "runs": len(rows), "seeds": sorted({r["seed"] for r in rows}),
            "hardware": [json.loads(h) for h in hw], "versions": [json.loads(v) for v in vs],
            "stamped_runs": sum("started_at" in r for r in rows),  # runs made before the stamps existed have none
            "first_start": min((r["started_at"] for r in rows if "started_at" in r), default=None),
            "last_finish": max((r["finished_at"] for r in rows if "finished_at" in r), default=None)}


def budget_text(rows: list[dict]) -> str:
    """How long the runs trained: `3 min of training per run`, `100 steps per run`, or each method's own steps."""
    minutes = {r["budget"]["minutes"] for r in rows} - {None}
    steps = {r["method"]: r["budget"]["steps"] for r in rows if r["budget"]["steps"]}
    if minutes and not steps:
        return " or ".join(f"{m:g}" for m in sorted(minutes)) + " min of training per run"
    if len(set(steps.values())) == 1:
        return f"{next(iter(steps.values()))} steps per run" + (f" (at most {min(minutes):g} min)" if minutes else "")
    return "each method's own step budget (" + ", ".join(f"{title(m)} {n}" for m, n in steps.items()) + ")"


def score_text(record: dict) -> str:
    """A table cell for one method's metric: mean ± spread over its seeds, or its one score marked as such."""
    return format_score(record["mean"], record["spread"], len(record["seeds"]), record["metric"], count=False)


def markdown(records: list[dict]) -> str:
    """The shoot-out table (from `setting_rows`) as markdown, one row per method."""
    name = COLUMN_TITLES.get(records[0]["metric"], records[0]["metric"])
    lines = [f"| method | LR | trainable | share | seeds | steps | s/step | tokens/s | peak MB | checkpoint MB | {name} (test) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['title']} | {r['lr']:g} | {r['trainable_params']:,} | {r['trainable_pct']:.3f}% | "
                     f"{len(r['seeds'])} | {r['steps']} | {r['step_seconds']:.3f} | "
                     f"{_number(r['tokens_per_second'], '.0f')} | {_number(r['peak_mb'], ',.0f')} | "
                     f"{_number(r['checkpoint_mb'], '.2f')} | {score_text(r)} |")
    return "\n".join(lines)


def write_tables(rows: list[dict], prefix: str) -> dict[str, str]:
    """PREFIX.csv, PREFIX.json (records + provenance) and PREFIX.md from a shoot-out's rows."""
    records, prov = setting_rows(rows), provenance(rows)
    paths = {ext: f"{prefix}.{ext}" for ext in ("csv", "json", "md")}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows({**r, "seeds": " ".join(map(str, r["seeds"]))} for r in records)
    Path(paths["json"]).write_text(json.dumps({"provenance": prov, "methods": records}, indent=1) + "\n")
    hw = "; ".join(f"{h['cpu']}, {h['torch_threads']} torch thread(s)" + (f", {h['gpu']}" if "gpu" in h else "")
                   for h in prov["hardware"])
    Path(paths["md"]).write_text(
        f"Shoot-out: task {prov['task']}, backbone {prov['model']}, {prov['budget']}, "
        f"{prov['train_items']} training items, seeds {prov['seeds']}; {hw}; "
        f"torch {', '.join(sorted({v['torch'] for v in prov['versions']}))}, transformers "
        f"{', '.join(sorted({v['transformers'] for v in prov['versions']}))}. Mean ± sample s.d. over seeds.\n\n"
        + markdown(records) + "\n")
    return paths

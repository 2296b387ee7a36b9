"""ptutor.results: one rule for pooling seeds, picking a rate on dev, formatting and deciding a comparison."""
import pytest

from ptutor.results import (at_edge, curve_at, mean, pick_lr, pick_seeds, picked_runs, ratio_interval, ratio_text,
                            score_cell, spread, sweep_table, t_quantile, verdict)


def run(method, lr, seed, dev, test=None, curve=None):
    return {"method": method, "lr": lr, "seed": seed, "metric": "f1", "dev_f1": dev, "primary": test or dev,
            "curve": curve or []}


LOG = [run("ft", 1e-4, 0, 0.40), run("ft", 1e-4, 1, 0.30), run("ft", 3e-4, 0, 0.38), run("ft", 3e-4, 1, 0.37),
       run("ft", 1e-3, 0, 0.10), run("ft", 1e-3, 1, 0.12), run("ft", 3e-4, 2, 0.36)]


def test_the_rate_is_picked_on_the_mean_dev_score_over_seeds_not_on_one_lucky_seed():
    # seed 0 alone would pick 1e-4 (0.40); over seeds 0-1 3e-4 wins (0.375 against 0.35)
    assert pick_lr(LOG, "ft") == 3e-4
    assert pick_lr(LOG, "ft", seeds=[0]) == 1e-4


def test_an_extra_seed_at_one_rate_does_not_enter_the_pick_but_is_a_benchmark_run():
    assert [r["seed"] for r in picked_runs(LOG)["ft"]] == [0, 1, 2]


def test_a_second_seed_at_the_two_best_rates_decides_between_them():
    """Seed 0 at every rate, seed 1 only at the two best: the pick is made on seeds 0-1 among those two."""
    rows = [run("pt", lr, 0, dev, 0.3) for lr, dev in ((1e-2, 0.40), (3e-2, 0.42), (1e-1, 0.20))]
    rows += [run("pt", 1e-2, 1, 0.41, 0.3), run("pt", 3e-2, 1, 0.30, 0.3)]
    assert pick_seeds(rows, "pt") == [0, 1]
    assert pick_lr(rows, "pt") == 1e-2  # 0.405 against 0.36; seed 0 alone would take 3e-2
    assert pick_seeds(rows[:3], "pt") == [0] and pick_lr(rows[:3], "pt") == 3e-2


def test_a_pick_at_the_end_of_the_grid_is_flagged():
    assert not at_edge(LOG, "ft")
    assert at_edge([r for r in LOG if r["lr"] != 1e-4], "ft")


def test_score_cells_say_how_many_seeds_and_mark_a_single_one():
    assert score_cell([0.5, 0.7], "f1") == "0.600 ± 0.141 (2)"
    assert score_cell([53.21], "bleu") == "53.2 (1 seed)"
    assert spread([1.0]) == 0.0


def test_sweep_table_shows_every_rate_and_bolds_the_pick():
    table = sweep_table(LOG)
    assert "| 0.0001 | 0.0003 | 0.001 | picked |" in table
    assert "**0.370 ± 0.010 (3)**" in table and table.rstrip().endswith("| 0.0003 |")


@pytest.mark.parametrize("a,b,threshold,expected", [
    ([1.10, 1.12, 1.11], [1.00, 1.01, 0.99], 1.0, "holds"),
    ([0.90, 0.91, 0.92], [1.00, 1.01, 0.99], 1.0, "does not hold"),
    ([1.00, 1.10, 0.90], [1.00, 1.01, 0.99], 1.02, "not decided"),
    ([1.50], [1.00, 1.01, 0.99], 1.0, "not decided"),  # one seed is a sketch, however large the ratio
])
def test_a_ratio_inside_the_seed_spread_decides_nothing(a, b, threshold, expected):
    assert verdict(a, b, threshold) == expected


# (IA)3 against LoRA on E2E (test BLEU of seeds 0-2 at each pick, data/results/e2e_steps.jsonl, before seeds 3-4
# were run): the ratio 1.04 is more than one relative s.d. from 1, which the first rule called "holds"; Welch's t is
# about 1.35
IA3_E2E, LORA_E2E = [65.862, 62.585, 61.932], [58.579, 61.68, 62.935]


def test_a_verdict_follows_the_ratios_95_percent_interval_not_the_spread():
    ratio, low, high = ratio_interval(IA3_E2E, LORA_E2E)
    assert round(ratio, 2) == 1.04 and low < 1.0 < high
    assert verdict(IA3_E2E, LORA_E2E) == "not decided"
    assert ratio_text(IA3_E2E, LORA_E2E) == "1.04× [0.96, 1.13]"
    # the same gap measured with five times less noise is decided
    tight = [mean(IA3_E2E) + (v - mean(IA3_E2E)) / 5 for v in IA3_E2E]
    close = [mean(LORA_E2E) + (v - mean(LORA_E2E)) / 5 for v in LORA_E2E]
    assert verdict(tight, close) == "holds" and verdict(close, tight) == "does not hold"


def test_fieller_bounds_are_the_ratios_a_welch_t_test_just_accepts():
    from scipy import stats

    a, b = [0.41, 0.38, 0.44, 0.40], [0.36, 0.33, 0.39]
    ratio, low, high = ratio_interval(a, b)
    va, vb = spread(a) ** 2 / len(a), spread(b) ** 2 / len(b)
    df = (va + ratio ** 2 * vb) ** 2 / (va ** 2 / (len(a) - 1) + ratio ** 4 * vb ** 2 / (len(b) - 1))
    for r in (low, high):  # at each bound the t statistic of mean(a) - r mean(b) is the critical value
        t = abs(mean(a) - r * mean(b)) / (va + r ** 2 * vb) ** 0.5
        assert abs(t - stats.t.ppf(0.975, df)) < 1e-6
    assert low < ratio < high


@pytest.mark.parametrize("df", [1.3, 2, 3.7, 4, 10, 60])
def test_t_quantiles_match_scipy(df):
    from scipy import stats

    assert abs(t_quantile(0.975, df) - stats.t.ppf(0.975, df)) < 1e-6


def test_a_ratio_whose_denominator_is_not_clearly_above_zero_has_an_unbounded_interval():
    ratio, low, high = ratio_interval([1.0, 1.1, 0.9], [0.1, -0.1, 0.05])
    assert low == float("-inf") and high == float("inf")
    assert verdict([1.0, 1.1, 0.9], [0.1, -0.1, 0.05]) == "not decided"


def test_curve_readings_match_steps_or_seconds():
    r = run("pt2", 1e-2, 0, 0.3, curve=[{"step": 50, "seconds": 30.0, "loss": 1.0, "dev_f1": 0.1},
                                        {"step": 100, "seconds": 61.0, "loss": 0.5, "dev_f1": 0.2}])
    assert curve_at(r, step=99) == 0.1 and curve_at(r, step=100) == 0.2
    assert curve_at(r, seconds=60) == 0.1 and curve_at(r, seconds=10) is None


def test_benchmark_table_relates_every_method_to_the_baseline():
    from ptutor.results import benchmark_table

    def r(m, seed, test, steps, sec):
        return {**run(m, 1e-3, seed, test - 0.01, test), "trainable_params": 10, "steps": steps,
                "step_seconds": sec, "peak_mb": 100.0}
    runs = {"ft": [r("ft", 0, 0.40, 100, 1.0), r("ft", 1, 0.42, 100, 1.0)],
            "pt2": [r("pt2", 0, 0.39, 200, 0.5), r("pt2", 1, 0.39, 200, 0.5)]}
    table = benchmark_table(runs, titles={"ft": "full fine-tuning"})
    assert "test / full fine-tuning" in table
    assert table.splitlines()[-1].endswith("| 0.390 ± 0.000 (2) | 0.95× [0.73, 1.38] | 0.50 |")
    # runs made on several machines (a step-matched log): no cost columns, the same scores and ratio
    lean = benchmark_table(runs, cost=False).splitlines()
    assert "s/step" not in lean[0] and "peak MB" not in lean[0]
    assert all(line.count("|") == lean[0].count("|") for line in lean)  # every row as wide as the header
    assert lean[-1].endswith("| 200 | 0.380 ± 0.000 (2) | 0.390 ± 0.000 (2) | 0.95× [0.73, 1.38] |")


def test_best_setting_picks_among_recipes_on_dev_and_keeps_all_its_seeds():
    from ptutor.results import best_setting

    def r(lr, seed, dev, test, head=None, anchor=0):  # P-Tuning v1 logs the anchor ids it drew: not an option
        return {**run("ptv1", lr, seed, dev, test), "config": {"method": "ptv1", "num_virtual_tokens": 8,
                                                               "anchor_ids": [anchor]},
                **({"head_lr": head} if head else {})}
    rows = [r(1e-3, 0, 0.30, 0.9), r(1e-3, 1, 0.32, 0.9),                                   # best test, worse dev
            r(3e-3, 0, 0.50, 0.40, head=0.03, anchor=5), r(3e-3, 1, 0.52, 0.41, head=0.03, anchor=7),
            r(3e-3, 2, 0.51, 0.39, head=0.03, anchor=9)]
    best = best_setting(rows, "ptv1")
    assert [x["seed"] for x in best] == [0, 1, 2] and best[0]["head_lr"] == 0.03  # anchors differ, one setting
    with pytest.raises(ValueError, match="no setting"):
        best_setting(rows, "ptv1", seeds=(0, 7))


def _stamped(method, lr, seed, score, **config):
    return {"task": "ner", "model": "m", "train_items": 10, "method": method, "lr": lr, "seed": seed, "metric": "f1",
            "primary": score, "f1": score, "dev_f1": score, "steps": 10, "step_seconds": 0.5, "peak_mb": 100.0,
            "trainable_params": 5, "total_params": 100, "config": {"method": method, **config}}


def test_every_table_pools_one_log_the_same_way():
    """results_table, summarize, the shoot-out's records and score_cell agree on one log: the same groups (a
    method's runs with other options are another setting, not more seeds), means, spreads and score text."""
    from ptutor.results import results_table, summarize
    from ptutor.results import markdown, setting_rows

    log = [_stamped("ft", 1e-4, s, v) for s, v in enumerate((0.40, 0.44, 0.42))]
    log += [_stamped("lora", 1e-3, 0, 0.30, r=8), _stamped("lora", 1e-3, 1, 0.34, r=8), _stamped("lora", 1e-3, 0, 0.20, r=2)]
    log[-1]["peak_mb"] = None  # a run that did not record its peak
    groups = summarize(log)
    records = setting_rows(log)
    assert [(g["method"], len(g["seeds"])) for g in groups] == [("ft", 3), ("lora", 2), ("lora", 1)]
    assert [(r["method"], r["mean"], r["spread"]) for r in records] == [
        (g["method"], round(g["score"], 4), round(g["spread"], 4)) for g in groups]
    cells = [score_cell([r["primary"] for r in log[:3]], "f1"), score_cell([0.30, 0.34], "f1"), score_cell([0.20], "f1")]
    table, shootout = results_table(log), markdown(records)
    for cell in cells:  # the same text in both tables (they carry a seeds column, so no count in brackets)
        text = cell.rsplit(" (", 1)[0] if "seed)" not in cell else cell
        assert text in table and text in shootout
    assert table.splitlines()[-1].split("|")[7].strip() == "-" and "| - |" in shootout.splitlines()[-1]


def test_a_one_seed_sweep_says_so_once_under_the_table():
    rows = [run("ft", lr, 0, dev) for lr, dev in ((1e-4, 0.30), (3e-4, 0.40), (1e-3, 0.20))]
    table = sweep_table(rows)
    assert "**0.400**" in table and "(1 seed)" not in table and table.endswith("not a measurement of it.")


def long_run(method, seed, scores, every=10):
    """A run made with curve_test: the test scored every `every` steps, the last point being its final score."""
    curve = [{"step": every * (i + 1), "seconds": 1.0 * i, "loss": 1.0, "test_f1": s} for i, s in enumerate(scores)]
    return {"method": method, "seed": seed, "metric": "f1", "batch_size": 16, "primary": scores[-1], "curve": curve}


def budgets():
    """Fine-tuning's book budget is 20 steps, LoRA's 40 (its steps are cheaper): 1x is step 20 and step 40."""
    long_runs = {"ft": [long_run("ft", s, [0.30, 0.40, 0.42, 0.44, 0.45, 0.46, 0.46, 0.47][:8], every=10)
                        for s in (0, 1, 2)],
                 "lora": [long_run("lora", s, [0.2, 0.3, 0.35, 0.40 + 0.01 * s, 0.41, 0.42, 0.43, 0.44 + 0.01 * s],
                                   every=20) for s in (0, 1, 2)]}
    protocol = {"ft": [{"steps": 20, "primary": 0.41 + 0.01 * s} for s in (0, 1, 2)],
                "lora": [{"steps": 40, "primary": 0.32 + 0.01 * s} for s in (0, 1, 2)]}
    return long_runs, protocol


def test_a_budget_is_read_off_each_long_run_at_k_times_the_methods_own_book_steps():
    from ptutor.results import at_budget, budget_table

    long_runs, protocol = budgets()
    assert at_budget(long_runs["lora"], 80) == pytest.approx([0.40, 0.41, 0.42])  # 2x LoRA's 40 steps: its fourth point
    table = budget_table(long_runs, protocol, multiples=(1, 2))
    ft_row, lora_row = table.splitlines()[2:]
    assert ft_row.startswith("| full fine-tuning | 20 | 0.400 ± 0.000 (3) | 0.440 ± 0.000 (3) | 0.420 ± 0.010 (3)")
    assert lora_row.startswith("| LoRA | 40 | 0.300 ± 0.000 (3) | 0.410 ± 0.010 (3) |")


def test_a_budget_ratio_compares_the_same_multiple_of_each_methods_budget_and_decides_by_its_interval():
    from ptutor.results import budget_ratio_table

    long_runs, protocol = budgets()
    row = budget_ratio_table(long_runs, protocol, multiples=(1, 4)).splitlines()[2]
    # 1x: LoRA 0.30 (step 40) over ft 0.40 (step 20), no spread on either side: decided below 1;
    # 4x: LoRA's step 160 (0.44, 0.45, 0.46) over ft's step 80 (0.47 each): 0.96x, but three seeds spread by 0.01
    # leave its interval across 1
    assert row == "| LoRA | 0.75× [0.75, 0.75]: does not hold | 0.96× [0.90, 1.01]: not decided |"


def test_one_seed_of_a_budget_curve_is_a_sketch_that_decides_nothing():
    from ptutor.results import budget_ratio_table

    long_runs, protocol = budgets()
    one = {m: runs[:1] for m, runs in long_runs.items()}
    assert budget_ratio_table(one, protocol, multiples=(1,)).splitlines()[2] == "| LoRA | 0.75× (sketch): not decided |"


def test_budget_curves_draw_one_mean_line_per_method_and_its_protocol_point():
    import matplotlib

    matplotlib.use("Agg")
    from ptutor.results import plot_budget_curves

    long_runs, protocol = budgets()
    ax = plot_budget_curves(long_runs, protocol)
    assert [line.get_label() for line in ax.get_lines()[:1]] == ["full fine-tuning"]
    xs = ax.get_lines()[0].get_xdata()
    assert list(xs) == [0.16 * (i + 1) for i in range(8)]  # 10 steps of 16 examples each


def test_a_paired_ratio_interval_is_every_ratio_a_t_test_on_the_run_by_run_differences_keeps():
    from scipy import stats

    from ptutor.results import paired_ratio_interval

    unseen, seen = [51.3, 40.5, 47.7], [62.5, 62.2, 61.3]  # one run's two test sets per position
    ratio, low, high = paired_ratio_interval(unseen, seen)
    assert ratio == pytest.approx(mean(unseen) / mean(seen))
    for r, kept in ((low - 1e-4, False), (low + 1e-4, True), (high - 1e-4, True), (high + 1e-4, False)):
        p = stats.ttest_1samp([x - r * y for x, y in zip(unseen, seen)], 0.0).pvalue
        assert (p >= 0.05) == kept, (r, p)


def test_pairing_narrows_the_interval_when_a_runs_two_scores_move_together():
    from ptutor.results import paired_ratio_interval

    a, b = [50.0, 55.0, 60.0, 52.0], [60.0, 65.0, 70.0, 62.0]  # b = a + 10: the runs differ, the ratio hardly
    _, low, high = paired_ratio_interval(a, b)
    _, ilow, ihigh = ratio_interval(a, b)
    assert high - low < (ihigh - ilow) / 5
    assert ratio_text(a, b, paired=True) == f"0.84× [{low:.2f}, {high:.2f}]"


def test_a_paired_interval_refuses_lists_that_do_not_pair():
    from ptutor.results import paired_ratio_interval

    with pytest.raises(ValueError, match="two or more pairs"):
        paired_ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0])

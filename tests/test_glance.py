"""The results page (ptutor.book.glance) is written from the protocol logs: every method of each log has its row, every
ratio its interval, every verdict the one the interval gives, and nothing on it is typed by hand."""
import shutil
from pathlib import Path

import pytest

from ptutor.book import glance
from ptutor.results import verdict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The page and its figure written into a copy of the book's data folder."""
    root = tmp_path_factory.mktemp("glance")
    shutil.copytree(ROOT / "data" / "results", root / "data" / "results")
    (root / "book").mkdir()
    return root, glance.page(root)


def test_every_method_of_every_protocol_log_has_a_row_with_its_ratio_and_interval(book):
    root, text = book
    data = glance.load(root)
    assert "WNUT-17" in data and "E2E" in data
    quality = text.split("## Quality", 1)[1].split("## Cost", 1)[0]
    for runs in data.values():
        for method in runs:
            row = next(l for l in quality.splitlines() if l.startswith(f"| {glance.title(method)} |"))
            assert "(sketch)" in row or "[" in row or method == "ft", row  # a ratio comes with its interval
    assert (root / "book" / "results_quality_cost.svg").read_text().startswith("<?xml")


def test_a_claims_verdict_is_the_one_its_intervals_give(book):
    root, text = book
    data = glance.load(root)
    for claim in glance.CLAIMS:
        readings, overall = glance.claim_row(claim, data)
        each = []
        for name in claim.benchmarks:
            if claim.a in data.get(name, {}) and claim.b in data.get(name, {}):
                bench = next(b for b in glance.BENCHMARKS if b.name == name)
                a = [glance.score(r, bench) for r in data[name][claim.a]]
                b = [glance.score(r, bench) for r in data[name][claim.b]]
                each.append(verdict(a, b, claim.threshold))
        expected = ("cannot be tested here" if not each else "does not hold" if "does not hold" in each else
                    "holds" if set(each) == {"holds"} else "not decided")
        assert overall == expected and f"**{overall}**" in text


def test_costs_are_one_measure_for_all_from_the_one_thread_cpu_runs():
    seconds, peak = glance.cpu_cost(ROOT, "ner", "ft")
    assert 0 < seconds < 10 and peak > 100
    assert glance.cpu_cost(ROOT, "ner", "no-such-method") == (None, None)

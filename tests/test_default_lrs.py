"""Each method's default learning rate per task is the rate its committed sweep on the real data set picked on dev,
so a default cannot drift from its evidence (a changed pick or a changed default fails here)."""
from pathlib import Path

import pytest

from ptutor.data import read_jsonl
from ptutor.methods import METHODS
from ptutor.results import pick_lr

ROOT = Path(__file__).resolve().parents[1]
REAL_LOGS = {"ner": "wnut17", "gen": "e2e"}  # every default must come from a sweep on a real data set

CASES = [(m, task) for m in sorted(METHODS) for task in sorted(METHODS[m].config_class.task_lrs)]


@pytest.mark.parametrize("method,task", CASES, ids=[f"{m}-{t}" for m, t in CASES])
def test_the_default_rate_is_the_real_data_sweeps_pick(method, task):
    config = METHODS[method].config_class
    source = config.lr_source.get(task)
    assert source, f"{method}: task_lrs[{task!r}] names no sweep log in lr_source"
    assert Path(source).name.startswith(REAL_LOGS[task]), f"{method} {task}: {source} is not a sweep on real data"
    rows = [r for r in read_jsonl(ROOT / source) if r["task"] == task]  # a log holds one protocol's runs
    assert pick_lr(rows, method) == config.task_lrs[task], f"{source} picks {pick_lr(rows, method):g} for {method}"


def test_the_task_head_rate_is_the_linear_probes_pick_on_real_data():
    """A new tagging head trains at the rate at which a head trained alone (the probe) does best on WNUT-17 dev."""
    from ptutor.tasks import get_task

    task = get_task("ner")
    rows = [r for r in read_jsonl(ROOT / task.head_lr_source) if r["task"] == "ner"]
    assert Path(task.head_lr_source).name.startswith("wnut17") and pick_lr(rows, "probe") == task.head_lr

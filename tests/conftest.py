"""Helpers the test modules share. pytest puts this folder on the import path, so a test module imports them
with `from conftest import ...`."""
import contextlib
import io
import subprocess
from pathlib import Path

import torch

from ptutor.backbones import load_backbone
from ptutor.data import NER_LABELS, Sentence

ROOT = Path(__file__).resolve().parents[1]
D2T = ROOT / "data" / "d2t" / "train.jsonl"  # a small generated data-to-text set (demos and tests only)
PEOPLE = [["Ana", "Lima"], ["Bo", "Chen"], ["Cy", "Dorn"], ["Di", "Egan"]]
PLACES = [["Oslo"], ["New", "Delhi"], ["Lagos"]]


def toy_sentences(n: int) -> list[Sentence]:
    """n tagged sentences "<person> lives in <place> ." (PER and LOC spans of one and two words)."""
    out = []
    for i in range(n):
        p, l = PEOPLE[i % 4], PLACES[i % 3]
        out.append(Sentence(p + ["lives", "in"] + l + ["."],
                            ["B-PER"] + ["I-PER"] * (len(p) - 1) + ["O", "O", "B-LOC"] + ["I-LOC"] * (len(l) - 1) + ["O"]))
    return out


def tiny_base(preset: str, task: str = "causal-lm", seed: int = 0):
    """The tiny random model of a family (no tokenizer); a tagger gets a head for the NER labels."""
    return load_backbone(preset, task, seed=seed, with_tokenizer=False,
                         **({"labels": NER_LABELS} if task == "token-classification" else {}))[0]


def token_ids() -> torch.Tensor:
    """(2, 7) fixed random token ids inside every tiny vocabulary."""
    return torch.randint(100, 2000, (2, 7), generator=torch.Generator().manual_seed(0))


def train_steps(model, task: str, steps: int = 3) -> None:
    """A few AdamW steps on random tokens (labels: the tokens for a causal LM, random tags otherwise)."""
    x = token_ids()
    tags = torch.randint(0, len(NER_LABELS), x.shape, generator=torch.Generator().manual_seed(1))
    labels = x if task == "causal-lm" else tags
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(input_ids=x, labels=labels).loss.backward()
        opt.step()
    model.eval()


def main_in_process(main, argv: list[str]) -> subprocess.CompletedProcess:
    """A command line's `main(argv)` run here instead of in a new Python (which spends seconds importing torch): its
    exit status, stdout and stderr, as subprocess.run would give them. One test per command still starts a real
    `python -m` process; this is for the many that probe what the parser and the error handling say."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: --help (0) and usage errors (2)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=err)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())

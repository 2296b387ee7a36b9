"""The command lines fed the mistakes a new user makes: each one is a short error that says what is wrong and how to
fix it, with exit status 2 and no traceback, found before any training (in-process calls, so the suite stays fast)."""
import json

import pytest

from ptutor.conll import write_conll
from ptutor.experiments import main as experiments
from ptutor.runs import main as runs

from conftest import toy_sentences


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    write_conll(toy_sentences(8), d / "train.conll")
    write_conll(toy_sentences(4), d / "test.conll")
    (d / "city.conll").write_text("Paris B-city\n\n")
    (d / "person.conll").write_text("Bob B-person\n\n")
    (d / "latin1.conll").write_bytes(b"Paris B-LOC\n\xff O\n")
    (d / "one_column.conll").write_text("Paris\n\n")
    (d / "not_bio.conll").write_text("Paris LOC\n\n")
    (d / "empty.conll").write_text("\n")
    (d / "rows.jsonl").write_text(json.dumps({"input": "name[A]", "target": "A."}) + "\n")
    (d / "broken.jsonl").write_text("{not json\n")
    (d / "no_target.jsonl").write_text(json.dumps({"input": "name[A]"}) + "\n")
    (d / "not_a_folder").write_text("a file")
    (d / "old.jsonl").write_text(json.dumps({"method": "ft", "lr": 1e-4}) + "\n")
    return d


def ner(d, *extra):
    return ["ner", "--method", "probe", "--model", "tiny-bert", "--train", str(d / "train.conll"),
            "--test", str(d / "test.conll"), "--steps", "1", "--quiet", *extra]


CASES = {  # name: (command line of `python -m ptutor.experiments` or, after "runs", of `python -m ptutor.runs`, what
    # the error says)
    "no task": (lambda d: [], "required: task"),
    "unknown task": (lambda d: ["tagging"], "invalid choice: 'tagging'"),
    "no method": (lambda d: ["ner", "--train", "a", "--test", "b"], "--method"),
    "unknown method": (lambda d: ["ner", "--method", "prefix", "--train", "a", "--test", "b"], "invalid choice: 'prefix'"),
    "no training file": (lambda d: ["ner", "--method", "ft", "--test", "b"], "--train"),
    "no test file": (lambda d: ["ner", "--method", "ft", "--train", "a"], "--test"),
    "zero steps": (lambda d: ner(d, "--steps", "0"), "--steps: must be positive, got 0"),
    "steps not a number": (lambda d: ner(d, "--steps", "many"), "--steps: expected a int, got 'many'"),
    "zero minutes": (lambda d: ner(d, "--minutes", "0"), "--minutes: must be positive"),
    "negative rate": (lambda d: ner(d, "--lr", "-0.001"), "--lr: must be positive"),
    "several rates": (lambda d: ner(d, "--lr", "1e-3,1e-2"), "several rates are a sweep: python -m ptutor.runs sweep"),
    "zero head rate": (lambda d: ner(d, "--head-lr", "0"), "--head-lr: must be positive"),
    "zero batch": (lambda d: ner(d, "--batch-size", "0"), "--batch-size: must be positive"),
    "unknown schedule": (lambda d: ner(d, "--schedule", "cosine"), "invalid choice: 'cosine'"),
    "warmup of all training": (lambda d: ner(d, "--warmup", "1.5"), "warmup is a share of training in [0, 1)"),
    "unknown backbone": (lambda d: ner(d, "--model", "bert-large"), "unknown backbone preset 'bert-large'"),
    "missing training file": (lambda d: ner(d, "--train", str(d / "nope.conll")), "CoNLL file not found"),
    "missing dev file": (lambda d: ner(d, "--dev", str(d / "nope.conll")), "CoNLL file not found"),
    "not UTF-8": (lambda d: ner(d, "--train", str(d / "latin1.conll")), "latin1.conll:2: not UTF-8"),
    "one column": (lambda d: ner(d, "--train", str(d / "one_column.conll")), "one_column.conll:1: expected 'token TAG'"),
    "not BIO": (lambda d: ner(d, "--train", str(d / "not_bio.conll")), "is not a BIO tag"),
    "empty file": (lambda d: ner(d, "--train", str(d / "empty.conll")), "no sentences found"),
    "a test tag training lacks": (lambda d: ner(d, "--train", str(d / "city.conll"), "--test", str(d / "person.conll")),
                                  "These are the tags of the training file"),
    "broken JSON line": (lambda d: ["gen", "--method", "lora", "--model", "tiny-llama", "--train", str(d / "broken.jsonl"),
                                    "--test", str(d / "rows.jsonl")], "broken.jsonl:1: not a JSON line"),
    "a row without its target": (lambda d: ["gen", "--method", "lora", "--model", "tiny-llama", "--train",
                                            str(d / "no_target.jsonl"), "--test", str(d / "rows.jsonl")],
                                 "'target' missing or empty"),
    "generation on an encoder": (lambda d: ["gen", "--method", "lora", "--model", "tiny-bert", "--train",
                                            str(d / "rows.jsonl"), "--test", str(d / "rows.jsonl"), "--steps", "1"],
                                 "cannot use backbone 'tiny-bert': This backbone is an encoder"),
    "another method's option": (lambda d: ner(d, "--num-virtual-tokens", "8"),
                                "--num-virtual-tokens is an option of method"),
    "a yes/no option given maybe": (lambda d: ["ner", "--method", "pt2", "--train", "a", "--test", "b",
                                              "--prefix-projection", "maybe"], "expected true or false, got 'maybe'"),
    "unwritable log": (lambda d: ner(d, "--out", str(d / "not_a_folder" / "log.jsonl")), "cannot be written"),
    "unwritable checkpoint": (lambda d: ner(d, "--save", str(d / "not_a_folder" / "ckpt")), "cannot be written"),
    "extra test set without a name": (lambda d: ner(d, "--also-test", str(d / "test.conll")), "write it as NAME=FILE"),
    "start from a folder that holds no checkpoint": (lambda d: ner(d, "--start-from", str(d)), "ptutor_method.json"),
    "rerun a line that is not there": (lambda d: ["rerun", str(d / "old.jsonl"), "--line", "3"], "has 1 lines"),
    "rerun a line with no configuration": (lambda d: ["rerun", str(d / "old.jsonl"), "--line", "1"],
                                           "has no 'run' field"),
    "a sweep without a dev set": (lambda d: ["runs", "sweep", "ner", "--method", "lora", "--lrs", "1e-3", "--train",
                                             str(d / "train.conll"), "--test", str(d / "test.conll"), "--out",
                                             str(d / "s.jsonl")], "picks on the dev set: add --dev FILE"),
    "a sweep without a log": (lambda d: ["runs", "sweep", "ner", "--method", "lora", "--lrs", "1e-3", "--train", "a",
                                         "--dev", "b", "--test", "c"], "pass --out FILE"),
    "a shoot-out of an unswept method": (lambda d: ["runs", "shootout", "gen", "--methods", "ptv1", "--train", "a",
                                                    "--test", "b", "--out", str(d / "x.jsonl")], "Sweep first"),
    "a time-equivalent budget without the time": (lambda d: ["runs", "shootout", "ner", "--methods", "ft", "--train",
                                                             "a", "--test", "b", "--rates", str(d / "old.jsonl"),
                                                             "--out", str(d / "x.jsonl")], "add --minutes M"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_command_line_is_a_short_error_with_exit_status_2(name, files, capsys):
    make, expected = CASES[name]
    argv = make(files)
    main, argv = (runs, argv[1:]) if argv[:1] == ["runs"] else (experiments, argv)
    try:
        status = main(argv)
    except SystemExit as e:  # argparse: usage and the error
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert expected in err, err
    assert err.strip().splitlines()[-1].startswith(("error:", "usage:", "python -m ptutor")), err

"""The book's real data sets (data/e2e, data/wnut17): shipped intact with their cards, cut by input, read by the
same runner as any tagging or data-to-text file, and the helpers that made them."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from ptutor.backbones import load_tokenizer
from ptutor.data import (WNUT17_LABELS, ConllFormatError, Sentence, e2e_input, encode_ner, ner_labels, read_conll,
                         read_jsonl, split_by_input, visible_words)
from ptutor.tasks import NerTask

ROOT = Path(__file__).resolve().parents[1]
E2E, WNUT = ROOT / "data" / "e2e", ROOT / "data" / "wnut17"
SPLITS = ("train", "dev", "test")


@pytest.mark.parametrize("folder,ext", [(E2E, "jsonl"), (WNUT, "conll")])
def test_every_file_matches_the_hash_its_card_lists_and_has_a_licence(folder, ext):
    card = (folder / "README.md").read_text()
    for split in SPLITS:
        digest = hashlib.sha256((folder / f"{split}.{ext}").read_bytes()).hexdigest()
        assert digest in card, f"{folder.name}/{split}.{ext} changed: its SHA-256 is not in the data card"
    licence = (folder / "LICENSE.md").read_text()
    assert "creativecommons.org/licenses/by" in licence and re.search(r"Derczynski|Novikova", licence)


def test_e2e_is_cut_by_input_so_no_input_is_both_trained_on_and_scored():
    inputs = {split: {r["input"] for r in read_jsonl(E2E / f"{split}.jsonl")} for split in SPLITS}
    assert [len(inputs[s]) for s in SPLITS] == [397, 50, 100]
    assert not (inputs["train"] & inputs["test"]) and not (inputs["train"] & inputs["dev"])
    assert not (inputs["dev"] & inputs["test"])


UNSEEN = ROOT / "data" / "e2e_unseen"


def test_the_unseen_names_cut_trains_on_no_held_out_name_and_keeps_every_row_once():
    from ptutor.realdata import e2e_values

    card = (UNSEEN / "README.md").read_text()
    files = {name: read_jsonl(UNSEEN / f"{name}.jsonl") for name in ("train", "dev", "test_seen", "test_unseen")}
    for name in files:
        assert hashlib.sha256((UNSEEN / f"{name}.jsonl").read_bytes()).hexdigest() in card, name
    held = {v for r in files["test_unseen"] for k, v in e2e_values(r["mr"]).items() if k in ("name", "near")}
    seen = {v for name in ("train", "dev", "test_seen") for r in files[name]
            for k, v in e2e_values(r["mr"]).items() if k in ("name", "near")}
    names = {e2e_values(r["mr"])["name"] for r in files["test_unseen"]} - seen
    assert len(names) == 6, names  # five drawn, and Midsummer House, whose every input is near a held-out value
    trained = {v for r in files["train"] + files["dev"] for k, v in e2e_values(r["mr"]).items() if k in ("name", "near")}
    unseen_inputs = {r["mr"] for r in files["test_unseen"]}
    assert all(set(v for k, v in e2e_values(m).items() if k in ("name", "near")) - trained for m in unseen_inputs)
    assert held - seen and not (names & trained)
    every = sorted((r["mr"], r["target"]) for split in SPLITS for r in read_jsonl(E2E / f"{split}.jsonl"))
    assert sorted((r["mr"], r["target"]) for rows in files.values() for r in rows) == every  # nothing lost or added
    assert "creativecommons.org/licenses/by-sa" in (UNSEEN / "LICENSE.md").read_text()


def test_almost_no_wnut17_test_entity_was_an_entity_in_training_as_its_card_says():
    from ptutor.conll import entity_mentions

    seen = {t.lower() for t, _ in entity_mentions(read_conll(WNUT / "train.conll", labels=None))}
    test = entity_mentions(read_conll(WNUT / "test.conll", labels=None))
    known = sum(t.lower() in seen for t, _ in test)
    assert (known, len(test)) == (24, 1079) and "24 of the 1,079 test entity mentions" in (WNUT / "README.md").read_text()


def test_e2e_rows_keep_the_original_mr_and_every_reference_of_an_input():
    rows = read_jsonl(E2E / "test.jsonl")
    assert all(e2e_input(r["mr"]) == r["input"] and r["target"].strip() for r in rows)
    assert len(rows) == 778  # all references of the 100 test inputs


def test_e2e_input_rewrites_only_the_separators():
    mr = "name[The Wrestlers], priceRange[less than £20], customer rating[low], familyFriendly[yes]"
    assert e2e_input(mr) == "name[The Wrestlers] | priceRange[less than £20] | customer rating[low] | familyFriendly[yes]"
    with pytest.raises(ValueError, match="not an E2E meaning representation"):
        e2e_input("just a sentence")


def test_split_by_input_is_seeded_and_keeps_each_inputs_rows_together():
    rows = [{"mr": f"m{i % 10}", "ref": str(i)} for i in range(40)]
    a = split_by_input(rows, "mr", {"test": 2, "dev": 2, "train": None}, seed=3)
    assert a == split_by_input(rows, "mr", {"test": 2, "dev": 2, "train": None}, seed=3)
    assert [len({r["mr"] for r in a[s]}) for s in ("test", "dev", "train")] == [2, 2, 6]
    assert sum(len(v) for v in a.values()) == 40
    with pytest.raises(ValueError, match="cannot fill"):
        split_by_input(rows, "mr", {"test": 6, "train": None, "dev": 4})


def test_wnut17_label_set_comes_from_the_training_file():
    train = read_conll(WNUT / "train.conll", labels=None)
    assert ner_labels(train) == WNUT17_LABELS  # the hub's order too (load_wnut17_hub checks it)
    assert len(train) == 3394


def test_conll2003_tags_keep_their_conventional_order():
    from ptutor.data import NER_LABELS

    assert ner_labels([Sentence(["EU", "Bonn"], ["B-ORG", "B-LOC"])]) == NER_LABELS


def test_a_dev_tag_that_training_lacks_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "train.conll").write_text("Paris B-place\nis O\n")
    (tmp_path / "dev.conll").write_text("Apple B-company\n")
    task = NerTask()
    task.learn(task.read(tmp_path / "train.conll"))
    assert task.labels == ["O", "B-place", "I-place"]
    with pytest.raises(ConllFormatError, match=r"dev.conll:1: unknown tag 'B-company'"):
        task.read(tmp_path / "dev.conll")


def test_a_tag_that_is_not_bio_is_refused(tmp_path):
    (tmp_path / "x.conll").write_text("Paris LOCATION\n")
    with pytest.raises(ConllFormatError, match=r"x.conll:1: tag 'LOCATION' .* not a BIO tag"):
        read_conll(tmp_path / "x.conll", labels=None)


def test_a_non_utf8_file_is_an_error_naming_file_and_line(tmp_path):
    (tmp_path / "x.conll").write_bytes(b"Paris B-LOC\n\xff\xfe O\n")
    with pytest.raises(ValueError, match=r"x.conll:2: not UTF-8"):
        read_conll(tmp_path / "x.conll")


def test_a_word_the_tokenizer_erases_keeps_its_place_and_tag():
    """WNUT-17 has lone U+FE0F variation selectors that WordPiece drops: without a stand-in the tags after
    such a word slide onto the wrong words."""
    tok = load_tokenizer("minilm")
    words = ["love", "\ufe0f", "Paris", "\ufe0f", "!"]
    assert visible_words([words], tok)[0] == ["love", tok.unk_token, "Paris", tok.unk_token, "!"]
    row = encode_ner([Sentence(words, ["O", "O", "B-LOC", "O", "O"])], tok)[0]
    assert sum(l != -100 for l in row["labels"]) == len(words)  # one label per word, B-LOC on "paris"
    from ptutor.data import NER_LABELS

    labelled = [(t, NER_LABELS[l]) for t, l in zip(tok.convert_ids_to_tokens(row["input_ids"]), row["labels"])
                if l != -100]
    assert ("paris", "B-LOC") in labelled


def test_every_wnut17_sentence_keeps_one_label_per_word():
    tok = load_tokenizer("minilm")
    for split in SPLITS:
        sents = read_conll(WNUT / f"{split}.conll", labels=WNUT17_LABELS)
        rows = encode_ner(sents, tok, WNUT17_LABELS, max_length=512)
        assert all(sum(l != -100 for l in r["labels"]) == len(s.tokens) for r, s in zip(rows, sents))


def test_evaluating_a_model_whose_outputs_do_not_match_the_label_set_is_an_error():
    from ptutor.backbones import load_backbone

    model, tok = load_backbone("tiny-bert", "token-classification", num_labels=9)  # outputs without tag names
    wnut = read_conll(WNUT / "dev.conll", labels=None)[:4]
    with pytest.raises(ValueError, match="9 outputs but the label set has 7 "):
        NerTask().evaluate(model, wnut, tok)


def test_pre_split_words_reach_a_byte_level_bpe_tokenizer_as_the_running_text_would():
    """SmolLM2's tokenizer reads a word's leading space as part of it: encode_ner gives the words their spaces
    back, so the pieces are those of the plain sentence; WordPiece (MiniLM) needs and gets no spaces."""
    from ptutor.data import spaces_start_words

    words = ["Blackburn", "Rovers", "won", "."]
    bpe, wordpiece = load_tokenizer("smollm2-135m"), load_tokenizer("minilm")
    assert spaces_start_words(bpe) and not spaces_start_words(wordpiece)
    for tok in (bpe, wordpiece):
        row = encode_ner([Sentence(words, ["B-ORG", "I-ORG", "O", "O"])], tok)[0]
        assert row["input_ids"] == tok(" ".join(words))["input_ids"]
        assert sum(l != -100 for l in row["labels"]) == len(words)


def test_a_non_utf8_generation_file_is_an_error_naming_file_and_line(tmp_path):
    from ptutor.tasks import GenTask

    (tmp_path / "x.jsonl").write_bytes(b'{"input": "a", "target": "b"}\n\xff\xfe{"input": 1}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: not UTF-8"):
        GenTask().read(tmp_path / "x.jsonl")

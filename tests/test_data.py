"""CoNLL reading/writing, label alignment, batching."""
import pytest

from ptutor.backbones import load_tokenizer
from ptutor.data import (IGNORE_INDEX, ConllFormatError, Sentence, align_labels, batches, collate, encode_ner,
                         read_conll, to_dataset, write_conll)

SENTS = [Sentence(["Jordan", "visited", "Amman", "."], ["B-PER", "O", "B-LOC", "O"]),
         Sentence(["The", "Washington", "Post", "hired", "Ana", "Lima"], ["O", "B-ORG", "I-ORG", "O", "B-PER", "I-PER"])]


def test_write_then_read_round_trip(tmp_path):
    write_conll(SENTS, tmp_path / "x.conll")
    assert read_conll(tmp_path / "x.conll") == SENTS


def test_reads_conll2003_four_columns_and_docstart(tmp_path):
    (tmp_path / "c.conll").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n")
    assert read_conll(tmp_path / "c.conll") == [Sentence(["EU", "rejects"], ["B-ORG", "O"])]


def test_malformed_line_reports_file_and_line_number(tmp_path):
    (tmp_path / "bad.conll").write_text("Paris B-LOC\nis O\nlovely\n")
    with pytest.raises(ConllFormatError, match=r"bad.conll:3: expected 'token TAG'"):
        read_conll(tmp_path / "bad.conll")


def test_unknown_tag_reports_line_and_known_tags(tmp_path):
    (tmp_path / "bad.conll").write_text("Paris B-LOC\n\nApple B-COMPANY\n")
    with pytest.raises(ConllFormatError, match=r"bad.conll:3: unknown tag 'B-COMPANY'.*B-ORG"):
        read_conll(tmp_path / "bad.conll")


def test_custom_label_set_is_accepted(tmp_path):
    (tmp_path / "g.conll").write_text("aspirin B-DRUG\n")
    assert read_conll(tmp_path / "g.conll", labels=["O", "B-DRUG", "I-DRUG"])[0].tags == ["B-DRUG"]


def test_empty_file_and_missing_file_are_errors(tmp_path):
    (tmp_path / "e.conll").write_text("\n\n")
    with pytest.raises(ConllFormatError, match="no sentences"):
        read_conll(tmp_path / "e.conll")
    with pytest.raises(FileNotFoundError):
        read_conll(tmp_path / "nope.conll")


def test_writer_refuses_tokens_with_spaces(tmp_path):
    with pytest.raises(ValueError, match="white space"):
        write_conll([Sentence(["New York"], ["B-LOC"])], tmp_path / "x.conll")


def test_align_labels_first_subword_only():
    # [CLS] wash ##ington post [SEP]
    assert align_labels([None, 0, 0, 1, None], [3, 4]) == [IGNORE_INDEX, 3, IGNORE_INDEX, 4, IGNORE_INDEX]
    assert align_labels([None, 0, 0, 1, None], [3, 4], all_subwords=True) == [IGNORE_INDEX, 3, 3, 4, IGNORE_INDEX]


@pytest.mark.parametrize("preset", ["minilm", "smollm2-135m"])
def test_every_word_keeps_exactly_one_label_with_real_tokenizers(preset):
    tok = load_tokenizer(preset)
    words = ["Schwarzenegger", "founded", "Xylophonics", "GmbH", "in", "Zürich", "."]
    tags = ["B-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"]
    row = encode_ner([Sentence(words, tags)], tok)[0]
    kept = [l for l in row["labels"] if l != IGNORE_INDEX]
    assert len(kept) == len(words)
    assert len(row["input_ids"]) > len(words)  # rare words split into several sub-words


def test_collate_pads_right_and_masks_labels():
    b = collate([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [1, 2, 3]},
                 {"input_ids": [5], "attention_mask": [1], "labels": [1]}], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["labels"].tolist() == [[1, 2, 3], [1, IGNORE_INDEX, IGNORE_INDEX]]


def test_shuffled_batches_are_seeded_and_cover_each_epoch():
    rows = [{"input_ids": [i], "attention_mask": [1], "labels": [0]} for i in range(10)]
    take = lambda seed: [b["input_ids"].flatten().tolist() for _, b in zip(range(5), batches(rows, 2, shuffle=True, seed=seed))]  # noqa: E731
    assert take(0) == take(0) and take(0) != take(1)
    assert sorted(sum(take(0), [])) == list(range(10))


def test_to_dataset_uses_label_ids():
    ds = to_dataset(SENTS)
    assert ds[0]["ner_tags"] == [1, 0, 5, 0] and ds.num_rows == 2


def test_hub_conll2003_is_mapped_to_our_tag_names(monkeypatch):
    """The real hub loader runs; offline we hand it a stand-in for datasets.load_dataset."""
    import datasets
    from ptutor.data import load_conll2003_hub

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    split = datasets.Dataset.from_dict({"tokens": [["EU", "rejects", "German"]], "ner_tags": [[3, 0, 7]]}, features=features)
    calls = []

    def fake_load_dataset(hub_id, revision=None):
        calls.append((hub_id, revision))
        return datasets.DatasetDict(train=split, test=split)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = load_conll2003_hub()
    assert out["train"] == [Sentence(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"])]
    assert calls == [("eriktks/conll2003", "refs/convert/parquet")]  # the parquet export: no dataset script


def test_show_prints_the_source_that_runs():
    from ptutor.book.notebook import show

    text = repr(show(align_labels))
    assert text.startswith("# defined in ptutor/conll.py\ndef align_labels(")
    assert "IGNORE_INDEX" in text

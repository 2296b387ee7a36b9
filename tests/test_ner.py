"""NER scoring: word-level tags, truncated words kept in the gold set, seqeval's two modes."""
import pytest
import torch
from types import SimpleNamespace

from ptutor.backbones import load_tokenizer
from ptutor.data import NER_LABELS, Sentence, encode_ner
from ptutor.ner import entity_scores, predict_word_tags
from ptutor.tasks import get_task


class FirstWordIsAPerson(torch.nn.Module):
    """A stand-in tagger: B-PER on the first word piece, O everywhere else."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, **_):
        logits = torch.zeros(*input_ids.shape, len(NER_LABELS))
        logits[..., NER_LABELS.index("O")] = 1.0
        logits[:, 1, NER_LABELS.index("B-PER")] = 2.0
        return SimpleNamespace(logits=logits)


SENT = Sentence(["Ann", "went", "to", "Paris", "today"], ["B-PER", "O", "O", "B-LOC", "O"])


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("tiny-bert")


def test_truncated_words_stay_in_the_gold_set_and_count_as_missed(tok):
    rows = encode_ner([SENT], tok, max_length=4)  # [CLS] ann went [SEP]: "Paris" is cut off
    gold, pred = predict_word_tags(FirstWordIsAPerson(), rows)
    assert gold == [["B-PER", "O"]]  # without the full tags, the LOC entity silently disappears
    gold, pred = predict_word_tags(FirstWordIsAPerson(), rows, word_tags=[SENT.tags])
    assert gold == [SENT.tags] and pred == [["B-PER", "O", "O", "O", "O"]]
    assert entity_scores(gold, pred)["recall"] == pytest.approx(0.5)


def test_the_runner_task_scores_truncated_sentences_against_all_their_words(tok):
    scores = get_task("ner").evaluate(FirstWordIsAPerson(), [SENT], tok, max_length=4)
    assert scores["recall"] == pytest.approx(0.5) and scores["precision"] == pytest.approx(1.0)


def test_word_tags_that_do_not_match_the_rows_are_an_error(tok):
    rows = encode_ner([SENT], tok, max_length=4)
    with pytest.raises(ValueError, match="do not start with"):
        predict_word_tags(FirstWordIsAPerson(), rows, word_tags=[["O"] * 5])
    with pytest.raises(ValueError, match="1 sentences|sentences but rows"):
        predict_word_tags(FirstWordIsAPerson(), rows, word_tags=[SENT.tags, SENT.tags])


def test_strict_mode_drops_spans_that_start_with_I():
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["I-PER", "I-PER", "O"]]  # a span that starts with I-: conlleval accepts it, IOB2 strict does not
    assert entity_scores(gold, pred)["f1"] == 1.0
    assert entity_scores(gold, pred, strict=True)["f1"] == 0.0

"""Soft prompt tuning: equal to peft's PromptTuning, masks/labels/logits right, clear errors."""
import pytest
import torch
from peft import PromptTuningConfig as PeftPromptTuningConfig
from peft import TaskType, get_peft_model

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.data import batches
from ptutor.methods import inject
from ptutor.methods.prompt_tuning import PromptTuning, PromptTuningConfig
from ptutor.train import TrainConfig, fit

P = 5
TASKS = {"token-classification": TaskType.TOKEN_CLS, "sequence-classification": TaskType.SEQ_CLS,
         "causal-lm": TaskType.CAUSAL_LM}


def backbone(preset, task):
    return load_backbone(preset, task, **({} if task == "causal-lm" else {"num_labels": 3}))


def batch(task, seed=0, with_types=False):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # one padded row
    out = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        out["token_type_ids"] = torch.zeros_like(ids)
        out["token_type_ids"][:, 4:] = 1
    if task == "sequence-classification":
        out["labels"] = torch.tensor([0, 2, 1])
    else:
        labels = torch.randint(0, 3, ids.shape, generator=g)
        labels[1, 6:] = -100
        out["labels"] = labels
    return out


def ours_and_peft(preset, task):
    ours = PromptTuning(backbone(preset, task)[0], PromptTuningConfig(num_virtual_tokens=P, init="vocab"))
    theirs = get_peft_model(backbone(preset, task)[0], PeftPromptTuningConfig(task_type=TASKS[task],
                                                                              num_virtual_tokens=P))
    with torch.no_grad():
        theirs.prompt_encoder["default"].embedding.weight.copy_(ours.prompt)
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize("preset,task", [("tiny-bert", "token-classification"),
                                         ("tiny-bert", "sequence-classification"),
                                         ("tiny-gpt2", "causal-lm"), ("tiny-llama", "causal-lm")])
def test_same_logits_and_loss_as_peft(preset, task):
    ours, theirs = ours_and_peft(preset, task)
    b = batch(task, with_types=preset == "tiny-bert")
    peft_b = dict(b)
    if task == "token-classification":  # peft leaves the label padding to the caller
        peft_b["labels"] = torch.cat([torch.full((3, P), -100), b["labels"]], dim=1)
    with torch.no_grad():
        a, p = ours(**b), theirs(**peft_b)
    p_logits = p.logits if task == "sequence-classification" else p.logits[:, P:]
    assert a.logits.shape == p_logits.shape
    assert (a.logits - p_logits).abs().max() < 1e-5
    assert (a.loss - p.loss).abs() < 1e-5
    # the same parameters train: the prompt, and the head for classification
    n_ours = sum(x.numel() for x in ours.parameters() if x.requires_grad)
    n_peft = sum(x.numel() for x in theirs.parameters() if x.requires_grad)
    assert n_ours == n_peft


def test_same_logits_as_peft_on_real_minilm():
    ours, theirs = ours_and_peft("minilm", "token-classification")
    b = batch("token-classification")
    b.pop("labels")
    with torch.no_grad():
        assert (ours(**b).logits - theirs(**b).logits[:, P:]).abs().max() < 1e-5


def test_logits_line_up_with_input_ids_and_gradients_reach_prompt():
    model, _ = backbone("tiny-bert", "token-classification")
    model = PromptTuning(model, PromptTuningConfig(num_virtual_tokens=7))
    b = batch("token-classification")
    out = model(**b)
    assert out.logits.shape[:2] == b["input_ids"].shape
    out.loss.backward()
    assert model.prompt.grad is not None and model.prompt.grad.abs().sum() > 0


def test_attention_mask_and_token_types_are_extended():
    model = PromptTuning(backbone("tiny-bert", "token-classification")[0], PromptTuningConfig(num_virtual_tokens=P))
    b = batch("token-classification", with_types=True)
    emb, mask, extra = model._with_prompt(b["input_ids"], b["attention_mask"], b["token_type_ids"])
    assert emb.shape[1] == mask.shape[1] == extra["token_type_ids"].shape[1] == 9 + P
    assert mask[:, :P].eq(1).all() and extra["token_type_ids"][:, :P].eq(0).all()
    assert torch.equal(mask[:, P:], b["attention_mask"])


def test_padding_does_not_change_the_real_tokens():
    model = PromptTuning(backbone("tiny-bert", "token-classification")[0], PromptTuningConfig(num_virtual_tokens=P))
    model.eval()
    ids = torch.randint(1000, 2000, (1, 6))
    with torch.no_grad():
        alone = model(input_ids=ids).logits
        padded = model(input_ids=torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1),
                       attention_mask=torch.tensor([[1] * 6 + [0] * 3])).logits[:, :6]
    assert (alone - padded).abs().max() < 1e-5


def test_init_choices():
    base, tok = backbone("tiny-gpt2", "causal-lm")
    table = base.get_input_embeddings().weight
    m = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=6, init="text", init_text="name country"),
                     tokenizer=tok)
    ids = tok("name country", add_special_tokens=False)["input_ids"]
    assert torch.equal(m.prompt.detach(), table[(ids * 6)[:6]])  # repeated, cut to L
    m = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=4, init="vocab"))
    assert all(any(torch.equal(v, row) for row in table) for v in m.prompt.detach()[:2])
    m = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=4, init="random"))
    assert 0.3 < m.prompt.std() / table.std() < 3  # the scale of real token embeddings


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = PromptTuning(backbone("tiny-bert", "token-classification")[0], PromptTuningConfig(num_virtual_tokens=P))
    with torch.no_grad():
        model.base.classifier.weight.add_(1.0)  # a "trained" head must come back too
    info = checkpoint.save(model, tmp_path)
    assert info["keys"] == 3  # prompt, classifier weight and bias
    loaded = checkpoint.load(backbone("tiny-bert", "token-classification")[0], tmp_path)
    assert torch.equal(loaded.prompt, model.prompt)
    assert torch.equal(loaded.base.classifier.weight, model.base.classifier.weight)
    b = batch("token-classification")
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(**b).logits, loaded(**b).logits)


def test_frozen_backbone_is_bit_identical_after_training():
    base, _ = backbone("tiny-bert", "token-classification")
    before = {k: v.clone() for k, v in base.state_dict().items() if not k.startswith("classifier")}
    model = inject(base, PromptTuningConfig(num_virtual_tokens=P))
    rows = [{"input_ids": list(range(101, 111)), "attention_mask": [1] * 10, "labels": [1] * 10}] * 8
    prompt0 = model.prompt.detach().clone()
    hist = fit(model, batches(rows, 4, shuffle=True), TrainConfig(lr=1e-2, steps=5, progress=False))
    assert hist.losses[-1] < hist.losses[0]
    assert not torch.equal(model.prompt, prompt0)
    after = base.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_error_prompt_longer_than_position_table():
    base, _ = backbone("tiny-bert", "token-classification")  # 128 positions
    with pytest.raises(ValueError, match="positions"):
        PromptTuning(base, PromptTuningConfig(num_virtual_tokens=128))
    model = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=100))
    with pytest.raises(ValueError, match="max_length=28"):
        model(input_ids=torch.ones(1, 40, dtype=torch.long))


def test_error_hidden_size_mismatch(tmp_path):
    base, _ = backbone("tiny-bert", "token-classification")
    with pytest.raises(ValueError, match="hidden size"):
        PromptTuning(base, PromptTuningConfig(num_virtual_tokens=P), init_embeddings=torch.zeros(P, 384))
    checkpoint.save(PromptTuning(backbone("minilm", "token-classification", )[0],
                                 PromptTuningConfig(num_virtual_tokens=P)), tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="another base: preset 'minilm' in the checkpoint, 'tiny-bert'"):
        checkpoint.load(base, tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="different backbone"):  # past the base check: the shapes
        checkpoint.load(base, tmp_path, check_base=False)


def test_error_generate_on_encoder():
    model = PromptTuning(backbone("tiny-bert", "token-classification")[0], PromptTuningConfig(num_virtual_tokens=P))
    with pytest.raises(TypeError, match="not a causal LM"):
        model.generate(input_ids=torch.ones(1, 4, dtype=torch.long), max_new_tokens=2)


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
def test_generation_cache_on_equals_off_and_uses_the_prompt(preset):
    base, tok = backbone(preset, "causal-lm")
    model = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=P)).eval()
    with torch.no_grad():
        model.prompt.mul_(20)  # a loud prompt, so it surely changes the output
    ids = torch.randint(1000, 2000, (2, 6))
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    on = model.generate(input_ids=ids, use_cache=True, **kw)
    off = model.generate(input_ids=ids, use_cache=False, **kw)
    assert on.shape == (2, 6 + 5) and torch.equal(on[:, :6], ids)  # prompt ids + new ids
    assert torch.equal(on, off)
    # every generated token is the argmax of the prompted model's logits (no step forgot the prompt) ...
    with torch.no_grad():
        logits = model(input_ids=on[:, :-1]).logits[:, 5:]
        bare = base(input_ids=on[:, :-1]).logits[:, 5:]
    assert torch.equal(logits.argmax(-1), on[:, 6:])
    # ... and the prompt matters: the bare model's logits differ
    assert (logits - bare).abs().max() > 1e-2


def test_batched_left_padded_generation_equals_one_by_one():
    base, tok = backbone("tiny-llama", "causal-lm")
    model = PromptTuning(base, PromptTuningConfig(num_virtual_tokens=P, init="vocab")).eval()
    short, long = torch.randint(1000, 2000, (1, 3)), torch.randint(1000, 2000, (1, 6))
    ids = torch.cat([torch.cat([torch.full((1, 3), tok.pad_token_id), short], 1), long])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1] * 6])
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    both = model.generate(input_ids=ids, attention_mask=mask, **kw)
    assert torch.equal(both[0, 6:], model.generate(input_ids=short, **kw)[0, 3:])
    assert torch.equal(both[1, 6:], model.generate(input_ids=long, **kw)[0, 6:])

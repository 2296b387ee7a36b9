"""P-Tuning v1: equal to peft's PromptEncoder (MLP and LSTM), exports, exact resume, anchors."""
import itertools

import pytest
import torch
from peft import PromptEncoderConfig, TaskType, get_peft_model

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.data import batches
from ptutor.methods import PromptTuning
from ptutor.checkpoint import export_inference, load_for_resume, save_for_resume
from ptutor.methods.p_tuning import PTuning, PTuningConfig
from ptutor.train import TrainConfig, fit

P = 4


def backbone(preset, task):
    return load_backbone(preset, task, **({} if task == "causal-lm" else {"num_labels": 3}))[0]


@pytest.mark.parametrize("encoder", ["mlp", "lstm"])
@pytest.mark.parametrize("preset,task,peft_task", [("tiny-bert", "token-classification", TaskType.TOKEN_CLS),
                                                   ("tiny-gpt2", "causal-lm", TaskType.CAUSAL_LM)])
def test_same_logits_as_peft(encoder, preset, task, peft_task):
    ours = PTuning(backbone(preset, task), PTuningConfig(num_virtual_tokens=P, encoder=encoder,
                                                          encoder_hidden_size=32))
    theirs = get_peft_model(backbone(preset, task), PromptEncoderConfig(
        task_type=peft_task, num_virtual_tokens=P, encoder_reparameterization_type=encoder.upper(),
        encoder_hidden_size=32))
    theirs.prompt_encoder["default"].load_state_dict(ours.prompt_encoder.state_dict())  # same layout, same names
    ids = torch.randint(1000, 2000, (3, 8))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a = ours(input_ids=ids, attention_mask=mask).logits
        b = theirs(input_ids=ids, attention_mask=mask).logits[:, P:]
    assert a.shape[:2] == ids.shape
    assert (a - b).abs().max() < 1e-5
    assert sum(p.numel() for p in ours.parameters() if p.requires_grad) == \
        sum(p.numel() for p in theirs.parameters() if p.requires_grad)


def test_same_logits_as_peft_on_real_minilm():
    ours = PTuning(backbone("minilm", "token-classification"), PTuningConfig(num_virtual_tokens=P, encoder="lstm"))
    theirs = get_peft_model(backbone("minilm", "token-classification"), PromptEncoderConfig(
        task_type=TaskType.TOKEN_CLS, num_virtual_tokens=P, encoder_reparameterization_type="LSTM",
        encoder_hidden_size=384))
    theirs.prompt_encoder["default"].load_state_dict(ours.prompt_encoder.state_dict())
    ids = torch.randint(1000, 2000, (2, 10))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert (ours(input_ids=ids).logits - theirs(input_ids=ids).logits[:, P:]).abs().max() < 1e-5


def rows(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(5, 12, (1,), generator=g))
        out.append({"input_ids": torch.randint(1000, 2000, (k,), generator=g).tolist(), "attention_mask": [1] * k,
                    "labels": torch.randint(0, 3, (k,), generator=g).tolist()})
    return out


def stream():
    return batches(rows(), 4, shuffle=True, seed=1)


def test_resume_equals_uninterrupted_training(tmp_path):
    """train 2N steps == train N, save, load (trainable), train N more: same weights, same losses."""
    config = PTuningConfig(num_virtual_tokens=P, encoder="lstm", encoder_hidden_size=16)
    N, lr = 4, 1e-2
    torch.manual_seed(0)  # dropout in the BERT backbone draws random numbers: same start for both runs
    full = PTuning(backbone("tiny-bert", "token-classification"), config)
    start = {k: v.clone() for k, v in full.trainable_state_dict().items()}
    h_full = fit(full, stream(), TrainConfig(lr=lr, steps=2 * N, progress=False))

    torch.manual_seed(0)
    first = PTuning(backbone("tiny-bert", "token-classification"), config)
    first.load_state_dict({**first.state_dict(), **start})
    opt = torch.optim.AdamW([p for p in first.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)  # as fit
    # the first half: the 2N-step schedule, stopped after N steps
    h1 = fit(first, itertools.islice(stream(), N), TrainConfig(lr=lr, steps=2 * N, progress=False), optimizer=opt)
    assert h1.steps == N
    save_for_resume(first, opt, tmp_path, step=N)
    torch.manual_seed(123)  # whatever happens in between must not matter
    second, opt2, step = load_for_resume(backbone("tiny-bert", "token-classification"), tmp_path)
    assert step == N and sum(p.requires_grad for p in second.parameters()) > 0
    h2 = fit(second, itertools.islice(stream(), N, None), TrainConfig(lr=lr, steps=2 * N, start_step=step,
                                                                       progress=False), optimizer=opt2)
    assert h1.losses + h2.losses == pytest.approx(h_full.losses, abs=1e-6)
    got, want = second.trainable_state_dict(), full.trainable_state_dict()
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)


def test_export_inference_is_a_small_prompt_tuning_checkpoint(tmp_path):
    model = PTuning(backbone("tiny-bert", "token-classification"), PTuningConfig(num_virtual_tokens=P,
                                                                                  encoder="lstm"))
    info = export_inference(model, tmp_path / "infer")
    full = checkpoint.save(model, tmp_path / "full")
    assert info["params"] == P * 64 + 3 * 64 + 3  # prompt vectors + head
    assert full["params"] > 10 * info["params"]  # the encoder is much bigger than its output
    assert any(p.requires_grad for p in model.parameters())  # exporting left the P-Tuning model trainable
    loaded = checkpoint.load(backbone("tiny-bert", "token-classification"), tmp_path / "infer")
    assert isinstance(loaded, PromptTuning)
    ids = torch.randint(1000, 2000, (2, 7))
    model.eval()
    with torch.no_grad():
        assert (model(input_ids=ids).logits - loaded(input_ids=ids).logits).abs().max() < 1e-6
    with pytest.raises(checkpoint.CheckpointError, match="training state"):
        load_for_resume(backbone("tiny-bert", "token-classification"), tmp_path / "infer")


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = PTuning(backbone("tiny-gpt2", "causal-lm"), PTuningConfig(num_virtual_tokens=P, encoder="mlp"))
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(backbone("tiny-gpt2", "causal-lm"), tmp_path)
    a, b = model.trainable_state_dict(), loaded.state_dict()
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    ids = torch.randint(1000, 2000, (2, 5))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)


def test_anchor_tokens_sit_among_the_virtual_tokens():
    base, tok = load_backbone("tiny-gpt2", "causal-lm")
    model = PTuning(base, PTuningConfig(num_virtual_tokens=P, anchor_text=" country is", anchor_position=2),
                    tokenizer=tok)
    anchor = tok(" country is", add_special_tokens=False)["input_ids"]
    prompt = model.prompt_embeddings()
    assert model.prompt_length == P + len(anchor) == prompt.shape[0]
    assert torch.equal(prompt[2:2 + len(anchor)], base.get_input_embeddings().weight[anchor])
    ids = torch.randint(1000, 2000, (2, 5))
    assert model(input_ids=ids).logits.shape[:2] == ids.shape
    # anchors are frozen word embeddings: they get no parameter, only the encoder trains
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"prompt_encoder"}


def test_generation_cache_on_equals_off():
    model = PTuning(backbone("tiny-gpt2", "causal-lm"), PTuningConfig(num_virtual_tokens=P, encoder="lstm")).eval()
    ids = torch.randint(1000, 2000, (2, 5))
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    on, off = model.generate(input_ids=ids, **kw), model.generate(input_ids=ids, use_cache=False, **kw)
    assert torch.equal(on, off) and torch.equal(on[:, :5], ids)


def test_frozen_backbone_bit_identical_after_training():
    base = backbone("tiny-bert", "token-classification")
    before = {k: v.clone() for k, v in base.state_dict().items() if not k.startswith("classifier")}
    model = PTuning(base, PTuningConfig(num_virtual_tokens=P))
    enc0 = {k: v.clone() for k, v in model.prompt_encoder.state_dict().items()}
    hist = fit(model, stream(), TrainConfig(lr=1e-2, steps=4, progress=False))
    assert hist.steps == 4
    assert any(not torch.equal(v, model.prompt_encoder.state_dict()[k]) for k, v in enc0.items())
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())


def test_errors():
    with pytest.raises(ValueError, match="encoder must be"):
        PTuningConfig(encoder="gru")
    with pytest.raises(ValueError, match="positions"):
        PTuning(backbone("tiny-bert", "token-classification"), PTuningConfig(num_virtual_tokens=200))
    with pytest.raises(TypeError, match="not a causal LM"):
        PTuning(backbone("tiny-bert", "token-classification"), PTuningConfig(num_virtual_tokens=P)).generate(
            input_ids=torch.ones(1, 3, dtype=torch.long))

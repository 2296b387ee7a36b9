"""Prefix tuning on an encoder-decoder (BART): the prefix reaches both stacks, padding and caching change
nothing, the runner and checkpoints work, and what ptutor cannot do is refused with the reason."""
import pytest
import torch
from transformers import T5Config

from ptutor import checkpoint
from ptutor.arch import family, is_causal_lm, is_encoder_decoder, is_seq2seq_lm, kv_layout
from ptutor.backbones import load_backbone
from ptutor.experiments import RunConfig, run
from ptutor.methods import METHODS, PrefixConfig, inject
from ptutor.tasks import get_task


def bart(seed=0):
    return load_backbone("tiny-bart", "seq2seq-lm", seed=seed)


def prefixed(p=3, seed=0):
    base, tok = bart(seed)
    model = inject(base, PrefixConfig(num_virtual_tokens=p))
    with torch.no_grad():  # encoder and decoder halves distinguishable, not the N(0, 1) start alone
        model.prefix_encoder.embedding.weight.normal_(std=0.5)
    return model.eval(), tok


def test_encoder_decoder_is_told_apart_also_through_a_method_wrapper():
    base, _ = bart()
    assert is_encoder_decoder(base) and is_seq2seq_lm(base) and not is_causal_lm(base)
    assert is_encoder_decoder(inject(base, PrefixConfig(num_virtual_tokens=2)))  # reads the wrapped base's config
    llama, _ = load_backbone("tiny-llama", "causal-lm")
    assert not is_encoder_decoder(llama) and is_causal_lm(llama) and not is_seq2seq_lm(llama)


def test_the_layout_counts_encoder_then_decoder_layers():
    base, _ = bart()
    lay = kv_layout(base.config)
    assert (lay.num_layers, lay.encoder_layers, lay.num_kv_heads, lay.head_dim) == (4, 2, 4, 16)
    model = inject(base, PrefixConfig(num_virtual_tokens=5))
    assert model.prefix_encoder.embedding.weight.shape == (5, 4 * 2 * 64)


def test_the_loss_reaches_the_encoder_and_the_decoder_halves_of_the_prefix():
    model, tok = prefixed()
    model.train()
    enc = tok(["name: A | type: b", "name: C | type: d | extra: e"], return_tensors="pt", padding=True)
    labels = tok(["A is a b.", "C is a d."], return_tensors="pt", padding=True)["input_ids"]
    model(**enc, labels=labels).loss.backward()
    grad = model.prefix_encoder.embedding.weight.grad.view(3, 4, 2, 64)  # (tokens, layers, key/value, width)
    per_layer = grad.abs().sum(dim=(0, 2, 3))
    assert bool((per_layer > 0).all()), f"every layer's prefix must get a gradient: {per_layer.tolist()}"


def test_the_encoder_prefix_changes_the_output_and_off_gives_the_base():
    model, tok = prefixed()
    enc = tok(["name: A | type: b"], return_tensors="pt")
    dec = torch.tensor([[2, 300, 301]])
    with_prefix = model(**enc, decoder_input_ids=dec).logits
    with torch.no_grad():
        model.prefix_encoder.embedding.weight.view(3, 4, 2, 64)[:, :2] += 1.0  # the encoder half only
    assert (model(**enc, decoder_input_ids=dec).logits - with_prefix).abs().max() > 1e-3
    with model.disable_adapter():
        off = model(**enc, decoder_input_ids=dec).logits
    assert torch.equal(off, model.base(**enc, decoder_input_ids=dec).logits)


def test_a_decoder_mask_of_the_real_tokens_gets_the_prefix_columns_added():
    model, tok = prefixed()
    enc = tok(["name: A | type: b"], return_tensors="pt")
    dec = torch.tensor([[2, 300, 301]])
    plain = model(**enc, decoder_input_ids=dec).logits
    masked = model(**enc, decoder_input_ids=dec, decoder_attention_mask=torch.ones_like(dec)).logits
    assert (plain - masked).abs().max() < 1e-5


def test_a_padded_row_equals_the_same_row_alone():
    """The encoder's prepared mask is widened by the prefix: padding must still hide the pad tokens."""
    model, tok = prefixed()
    texts = ["name: A | type: b", "name: Cee | type: dee | extra: a much longer value here"]
    batch = tok(texts, return_tensors="pt", padding=True)
    assert batch["attention_mask"][0].min() == 0  # the first row is padded
    dec = torch.tensor([[2, 300, 301], [2, 300, 301]])
    together = model(**batch, decoder_input_ids=dec).logits[0]
    alone = model(**tok(texts[:1], return_tensors="pt"), decoder_input_ids=dec[:1]).logits[0]
    assert (together - alone).abs().max() < 1e-4


@pytest.mark.parametrize("method", ["pt2", "pt", "ptv1"])
def test_generate_with_the_cache_equals_a_full_forward_per_token(method):
    if method == "pt2":
        model, tok = prefixed()
    else:  # prompt tuning on an encoder-decoder is Lester et al.'s own setting (T5): the encoder reads the prompt
        base, tok = bart()
        model = inject(base, METHODS[method].config_class(num_virtual_tokens=3)).eval()
    enc = tok(["name: A | type: b", "name: Cee | type: dee | extra: e"], return_tensors="pt", padding=True)
    fast = model.generate(**enc, max_new_tokens=6, do_sample=False)
    ids = torch.full((2, 1), model.base.config.decoder_start_token_id)
    for _ in range(6):
        nxt = model(**enc, decoder_input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    assert torch.equal(fast[:, :ids.shape[1]], ids[:, :fast.shape[1]])
    assert fast.shape[1] > 2


def test_runner_trains_and_the_checkpoint_round_trips(tmp_path):
    rows = [{"input": f"name: N{i} | type: t{i % 3}", "target": f"N{i} is a t{i % 3}."} for i in range(16)]
    result, model, hist = run(RunConfig.of("gen", "pt2", "tiny-bart", rows, rows[:4], steps=6, lr=1e-2,
                                           num_virtual_tokens=4), save=str(tmp_path / "ckpt"), return_model=True)
    assert result["steps"] == 6 and hist.losses[-1] < hist.losses[0]
    loaded = checkpoint.load(bart()[0], tmp_path / "ckpt")
    enc = {"input_ids": torch.tensor([[5, 6, 7]]), "decoder_input_ids": torch.tensor([[2, 9]])}
    assert torch.equal(loaded(**enc).logits, model.eval()(**enc).logits)
    lora = run(RunConfig.of("gen", "lora", "tiny-bart", rows, rows[:4], steps=2))
    assert lora["trainable_params"] > 0 and lora["steps"] == 2


def test_what_ptutor_cannot_do_on_an_encoder_decoder_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="T5's attention shares one relative-position bias"):
        family(T5Config(d_model=64, num_layers=2, num_heads=4, d_kv=16, d_ff=128))
    with pytest.raises(ValueError, match="task='seq2seq-lm'"):
        load_backbone("tiny-bart", "causal-lm")
    with pytest.raises(ValueError, match="encoder-decoder such as 'tiny-bart'"):
        load_backbone("tiny-llama", "seq2seq-lm")
    with pytest.raises(ValueError, match="on an encoder-decoder use init='random'"):
        inject(bart()[0], PrefixConfig(num_virtual_tokens=2, init="vocab"))
    model, tok = prefixed()
    with pytest.raises(ValueError, match="use_cache=False"):
        model.generate(**tok(["a"], return_tensors="pt"), use_cache=False)


def test_a_hub_encoder_decoder_is_loaded_whole_for_generation(tmp_path):
    """'hub:<id>' also takes a local folder: a BART saved there must load as encoder + decoder for the gen task,
    and asking for a causal LM must not quietly load its decoder alone."""
    base, tok = bart()
    base.save_pretrained(tmp_path / "bart")
    tok.save_pretrained(tmp_path / "bart")
    assert get_task("gen").backbone_task_for(f"hub:{tmp_path / 'bart'}") == "seq2seq-lm"
    with pytest.raises(ValueError, match="task='seq2seq-lm'"):
        load_backbone(f"hub:{tmp_path / 'bart'}", "causal-lm")
    rows = [{"input": "name: A | type: b", "target": "A is a b."}] * 4
    assert run(RunConfig.of("gen", "lora", f"hub:{tmp_path / 'bart'}", rows, rows, steps=1))["steps"] == 1

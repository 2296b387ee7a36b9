"""Diagnostics: LoRA spectra, effective rank, amplification (Hu et al. 2021, Section 7); prefix attention mass; perplexity."""
import pytest
import torch

from ptutor.backbones import load_backbone
from ptutor.data import NER_LABELS
from ptutor.book.diagnostics import amplification, delta_spectra, effective_rank, perplexity, prefix_attention_mass
from ptutor.methods import LoraConfig, PrefixConfig, inject


def test_effective_rank_is_r_for_a_flat_spectrum_and_1_for_one_direction():
    assert effective_rank(torch.ones(8)) == pytest.approx(8)
    assert effective_rank(torch.tensor([3.0, 0, 0, 0])) == pytest.approx(1)


def test_spectra_are_the_singular_values_of_each_scaled_update():
    base, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    model = inject(base, LoraConfig(r=4, alpha=8))
    with torch.no_grad():
        for layer in model.lora_layers().values():
            layer.lora_B.weight.normal_()
    spectra = delta_spectra(model)
    assert set(spectra) == set(model.target_names)
    name = model.target_names[0]
    layer = model.lora_layers()[name]
    want = torch.linalg.svdvals(2.0 * layer.lora_B.weight @ layer.lora_A.weight)[:4]
    assert torch.allclose(spectra[name], want, rtol=1e-4) and len(spectra[name]) == 4


def test_an_update_along_ws_top_directions_is_seen_as_such():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 64, generator=g))
    v, _ = torch.linalg.qr(torch.randn(48, 48, generator=g))
    s = torch.linspace(10, 0.1, 48)
    w = u[:, :48] @ torch.diag(s) @ v.T
    aligned = 0.1 * u[:, :2] @ v[:, :2].T  # dW in W's two strongest directions
    a = amplification(w, aligned, k=2)
    assert a["w_in_delta"] > 5 * a["w_in_random"]
    assert a["amplification"] == pytest.approx(aligned.norm() / a["w_in_delta"])


def test_prefix_attention_mass_is_the_attention_real_tokens_pay_to_the_prefix():
    base, tok = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, seed=0)
    torch.manual_seed(0)
    model = inject(base, PrefixConfig(num_virtual_tokens=4, init="random", init_std=1.0)).eval()
    batch = dict(tok(["a b c", "a b c d e f"], return_tensors="pt", padding=True))
    implementation = base.config._attn_implementation
    got = prefix_attention_mass(model, batch)
    assert base.config._attn_implementation == implementation  # switched back after the eager forward
    base.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(**batch, output_attentions=True).attentions
    base.set_attn_implementation(implementation)
    row, query = 0, 1  # a real token of the first (padded) sentence
    for layer, a in enumerate(attentions):
        real = batch["attention_mask"].bool()
        want = a[..., :4].sum(-1).mean(1)[real].mean()
        assert got["mass"][layer] == pytest.approx(float(want), abs=1e-6)
        assert 0 < a[row, :, query, :4].sum(-1).mean() < 1
    lengths = batch["attention_mask"].sum(-1).float()
    assert got["uniform"] == pytest.approx(float((4 / (4 + lengths)).mean()))


def test_perplexity_is_the_exponential_of_the_mean_token_loss_and_off_means_base():
    base, tok = load_backbone("tiny-llama", "causal-lm", seed=0)
    texts = ["one two three four", "five six seven eight nine ten"]
    losses, counts = [], []
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt")["input_ids"]
            losses.append(float(base(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1))
            counts.append(ids.shape[1] - 1)
    want = float(torch.exp(torch.tensor(sum(losses) / sum(counts))))
    assert perplexity(base, tok, texts) == pytest.approx(want, rel=1e-5)
    model = inject(base, LoraConfig(r=2))
    with torch.no_grad():
        for layer in model.lora_layers().values():
            layer.lora_B.weight.normal_()
    assert perplexity(model, tok, texts) != pytest.approx(want, rel=1e-3)  # the adapter changes the model...
    with model.disable_adapter():
        assert perplexity(model, tok, texts) == pytest.approx(want, rel=1e-6)  # ...and off, it is the base again
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        perplexity(base, tok, ["a"])

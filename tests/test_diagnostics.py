"""LoRA diagnostics: spectra of the updates, effective rank, amplification (Hu et al. 2021, Section 7)."""
import pytest
import torch

from ptutor.backbones import load_backbone
from ptutor.diagnostics import amplification, delta_spectra, effective_rank
from ptutor.methods import LoraConfig, inject


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

"""NF4 from scratch (ptutor.quant) against bitsandbytes on the same tensors, and its storage cost."""
import pytest
import torch

from ptutor.quant import (DequantizedMatmul, NF4Linear, byte_table, dequantize_4bit, dequantize_4bit_fast,
                          dequantize_absmax_8bit, fp4_levels, int4_levels, nf4_levels, quantize_4bit,
                          quantize_absmax_8bit, quantize_nf4, unpack)

bnbf = pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes is in requirements-run.txt")


def weights(shape=(256, 192), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.05


def test_nf4_levels_are_the_bitsandbytes_table():
    ours, theirs = nf4_levels(), bnbf.get_4bit_type("nf4", device="cpu")
    assert ours.shape == (16,) and (ours - theirs).abs().max() < 1e-4
    assert ours[7] == 0 and ours[0] == -1 and ours[-1] == 1  # an exact zero, both ends used


def test_fp4_levels_are_the_bitsandbytes_table():
    theirs = bnbf.get_4bit_type("fp4", device="cpu").unique().sort().values
    assert torch.allclose(fp4_levels(), theirs, atol=1e-4)


def test_codes_and_dequantised_weights_match_bitsandbytes():
    w = weights()
    ours = quantize_4bit(w, nf4_levels(), blocksize=64)
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=False)
    assert torch.allclose(ours.absmax, state.absmax.float())
    theirs_idx = torch.stack([packed.view(-1) >> 4, packed.view(-1) & 15], 1).reshape(-1).long()
    same = (unpack(ours)[: w.numel()] == theirs_idx[: w.numel()]).float().mean().item()
    assert same > 0.999, f"only {same:.4%} of the 4-bit codes agree"
    ours_w = dequantize_4bit(ours)
    theirs_w = bnbf.dequantize_4bit(packed, state)
    assert ours_w.shape == w.shape and (ours_w - theirs_w).abs().max() < 1e-3 * w.abs().max()


def test_double_quantisation_costs_4_127_bits_per_weight_and_little_accuracy():
    w = weights((1024, 1024))
    plain, double = quantize_nf4(w, double_quant=False), quantize_nf4(w, double_quant=True)
    assert plain.bits_per_parameter() == pytest.approx(4 + 32 / 64)  # 4.5: an fp32 scale per 64 weights
    assert double.bits_per_parameter() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-4)  # 4.127
    err_plain = (dequantize_4bit(plain) - w).pow(2).mean()
    err_double = (dequantize_4bit(double) - w).pow(2).mean()
    assert err_double < 1.01 * err_plain  # the scales' own 8-bit error hardly shows
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    err_bnb = (bnbf.dequantize_4bit(packed, state) - w).pow(2).mean()
    assert err_double < 1.05 * err_bnb


def test_nf4_beats_int4_and_fp4_on_normal_weights():
    w = weights((512, 512), seed=1)
    err = {name: (dequantize_4bit(quantize_4bit(w, levels)) - w).pow(2).mean().item()
           for name, levels in [("nf4", nf4_levels()), ("int4", int4_levels()), ("fp4", fp4_levels())]}
    assert err["nf4"] < err["int4"] and err["nf4"] < err["fp4"], err


def test_zeros_and_odd_sizes_survive_a_round_trip():
    w = torch.zeros(3, 7)
    w[1, 2] = 0.5
    back = dequantize_4bit(quantize_4bit(w, blocksize=4))
    assert back.shape == (3, 7) and torch.equal(back, w)  # exact zero level; absmax values exact
    with pytest.raises(ValueError, match="even"):
        quantize_4bit(w, blocksize=3)


@pytest.mark.parametrize("levels", [nf4_levels, int4_levels, fp4_levels], ids=["nf4", "int4", "fp4"])
@pytest.mark.parametrize("shape,blocksize,double_quant", [((256, 192), 64, True), ((7, 5), 2, False),
                                                          ((3, 9), 4, True), ((5,), 2, False)])
def test_the_byte_lookup_gives_the_plain_dequantisation_bit_for_bit(levels, shape, blocksize, double_quant):
    q = quantize_4bit(weights(shape), levels(), blocksize, double_quant)  # int4 and FP4 have 15 levels, not 16
    for dtype in (torch.float32, torch.bfloat16):
        assert torch.equal(dequantize_4bit_fast(q, dtype), dequantize_4bit(q, dtype))


@pytest.mark.parametrize("n,blocksize", [(1728, 256), (13824, 256), (7, 2), (5, 4)])
def test_the_scales_decode_block_by_block_as_stored(n, blocksize):
    values = torch.rand(n, generator=torch.Generator().manual_seed(n)) * 0.2
    codes, scale, mean = quantize_absmax_8bit(values, blocksize)
    padded = torch.nn.functional.pad(codes.float() - 128, (0, scale.numel() * blocksize - n))
    by_block = (padded.view(-1, blocksize) * scale[:, None] / 127).view(-1)[:n] + mean  # one scale per row of codes
    assert torch.equal(dequantize_absmax_8bit(codes, scale, mean, blocksize), by_block)
    assert (by_block - values).abs().max() < 2e-3


def test_the_byte_table_holds_each_bytes_two_levels_high_nibble_first():
    pairs = byte_table(nf4_levels()).view(torch.float32).view(256, 2)
    assert torch.equal(pairs[0x3C], nf4_levels()[[3, 12]]) and torch.equal(pairs[0xF0], nf4_levels()[[15, 0]])


def test_nf4_linear_is_the_dequantised_layer_and_passes_gradients_to_its_input():
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 64)
    q = NF4Linear(linear)
    x = torch.randn(5, 128, requires_grad=True)
    y = q(x)
    assert torch.allclose(y, torch.nn.functional.linear(x, q.weight, linear.bias), atol=1e-6)
    full = linear(x)
    assert (y - full).norm() < 0.15 * full.norm()  # close to the full-precision layer (4-bit: ~10% error)
    y.sum().backward()
    assert x.grad is not None and not any(p.requires_grad for p in q.parameters())
    assert "4.13 bits/weight" in repr(q)


def test_nf4_linear_keeps_only_4bit_codes_between_forward_and_backward():
    layer = NF4Linear(torch.nn.Linear(256, 128), blocksize=64)
    x = torch.randn(4, 256, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y = layer(x)
    assert 256 * 128 not in saved  # no dequantised weight is kept for the backward pass
    y.sum().backward()
    dense = torch.nn.Linear(256, 128)
    with torch.no_grad():
        dense.weight.copy_(layer.weight)
        dense.bias.copy_(layer.bias)
    x2 = x.detach().clone().requires_grad_(True)
    dense(x2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)  # the same input gradient as the dequantised layer's


def test_without_gradients_nf4_linear_multiplies_directly_with_the_same_numbers(monkeypatch):
    torch.manual_seed(0)
    layer = NF4Linear(torch.nn.Linear(128, 64))
    x = torch.randn(3, 5, 128)
    through = layer(x.clone().requires_grad_(True))  # training: the input needs a gradient
    assert "DequantizedMatmulBackward" in {type(f).__name__ for f, _ in through.grad_fn.next_functions if f}

    def refuse(*args):
        raise AssertionError("no gradient can flow here: the autograd function should be skipped")

    monkeypatch.setattr(DequantizedMatmul, "apply", refuse)
    with torch.no_grad():
        generating = layer(x)  # generation and evaluation
    frozen_input = layer(x)  # grad mode on, but the input needs no gradient (a first layer in training)
    assert generating.grad_fn is None and frozen_input.grad_fn is None  # nothing recorded, no weight kept
    assert torch.equal(generating, through.detach()) and torch.equal(frozen_input, through.detach())
    assert torch.equal(generating, torch.nn.functional.linear(x, layer.weight) + layer.bias)


def test_nf4_linear_stores_its_weight_on_the_levels_it_is_given():
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 64, bias=False)
    for levels in (int4_levels(), nf4_levels()):
        w = NF4Linear(linear, double_quant=False, levels=levels).weight
        expected = dequantize_4bit(quantize_4bit(linear.weight.detach(), levels, 64))
        assert torch.equal(w, expected)
    assert not torch.equal(NF4Linear(linear, levels=int4_levels()).weight, NF4Linear(linear).weight)

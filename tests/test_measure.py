"""Counting and memory: 4-bit weights count as weights, predicted step memory against torch's profiler."""
import pytest
import torch

from ptutor.backbones import load_backbone
from ptutor.measure import (Architecture, compare_latency, count_parameters, memory_anatomy, predict_training_memory,
                            weight_bytes)
from ptutor.methods import FineTuneConfig, LoraConfig, QLoraConfig, inject
from ptutor.train import make_optimizer


def tiny(preset="tiny-bert"):
    task = "token-classification" if preset == "tiny-bert" else "causal-lm"
    return load_backbone(preset, task, with_tokenizer=False, **({"num_labels": 9} if preset == "tiny-bert" else {}))[0]


def test_a_4bit_weight_counts_as_one_weight_and_its_bytes_separately():
    plain = tiny("tiny-llama")
    total = count_parameters(plain)[1]
    q = inject(tiny("tiny-llama"), QLoraConfig(r=2, blocksize=16, train_head=False))
    lora = sum(p.numel() for n, p in q.named_parameters() if "lora_" in n)
    assert count_parameters(q) == (lora, total + lora)
    assert weight_bytes(q) < weight_bytes(plain)  # the block linears take about 4.1 bits instead of 32


def test_bitsandbytes_4bit_parameters_count_their_weights_not_their_bytes():
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear4bit(64, 32, bias=False, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(torch.randn(32, 64), requires_grad=False, quant_type="nf4")
    layer.to("cpu")  # quantises
    assert layer.weight.numel() == 32 * 64 // 2  # the packed storage: two weights a byte
    assert count_parameters(layer) == (0, 32 * 64)


@pytest.mark.parametrize("preset,config", [("tiny-bert", LoraConfig(r=4)), ("tiny-bert", QLoraConfig(r=4, blocksize=16)),
                                           ("tiny-bert", FineTuneConfig()), ("minilm", FineTuneConfig())],
                         ids=["lora", "qlora", "ft", "ft-minilm"])
def test_predicted_step_memory_is_within_10_percent_of_the_profilers_peak(preset, config):
    """(The fused AdamW that make_optimizer builds updates in place: a full fine-tuning step peaks where the
    forward pass ends or where every gradient exists, whichever holds more, with no optimizer temporary.)"""
    torch.manual_seed(0)
    if preset == "minilm":
        base = load_backbone("minilm", "token-classification", with_tokenizer=False, num_labels=9)[0]
    else:
        base = tiny(preset)
    model = inject(base, config).train()
    x = torch.randint(100, 1000, (8 if preset == "minilm" else 16, 64))
    y = torch.randint(0, 9, x.shape)
    opt = make_optimizer(model, 1e-4)  # the optimizer fit() builds

    def step():
        model(input_ids=x, labels=y).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    predicted = predict_training_memory(model, {"input_ids": x, "labels": y})
    measured = memory_anatomy(step)
    assert predicted["weights"] == pytest.approx(measured["parameter"], rel=0.01)
    assert predicted["optimizer_state"] == pytest.approx(measured["optimizer_state"], rel=0.01)
    assert 0.9 < predicted["peak"] / measured["peak"] < 1.1, (predicted, measured)


def test_the_meta_trace_uses_no_memory_and_leaves_the_model_alone():
    model = inject(tiny(), LoraConfig(r=4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(100, 1000, (2, 8))
    out = predict_training_memory(model, {"input_ids": x, "labels": torch.zeros_like(x)})
    assert out["activations"] > 0 and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_compare_latency_times_every_function():
    calls = {"a": 0, "b": 0}

    def bump(k):
        calls[k] += 1

    t = compare_latency({"a": lambda: bump("a"), "b": lambda: bump("b")}, rounds=5, warmup=1)
    assert set(t) == {"a", "b"} and calls == {"a": 6, "b": 6} and all(v >= 0 for v in t.values())


def test_architecture_counts_published_model_sizes_from_their_shapes():
    glm = Architecture(layers=28, hidden=4096, ffn=16384, vocab=130528)  # ChatGLM-6B: "6.2 B parameters"
    assert abs(glm.params() / 1e9 - 6.17) < 0.01
    assert abs(glm.weight_gb(bits=4) - 3.89) < 0.01  # INT4 blocks, fp16 embeddings
    llama = Architecture(layers=80, hidden=8192, ffn=22016, vocab=32000, glu=True, tied=False)  # LLaMA-65B
    assert abs(llama.params() / 1e9 - 65.3) < 0.1
    assert abs(llama.lora_params(64, tuple(llama.linears())) / 1e9 - 0.80) < 0.01  # Guanaco's r = 64 everywhere


def test_architecture_lora_count_is_what_peft_trains_on_a_small_model():
    import peft
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=100)
    arch = Architecture(layers=2, hidden=64, ffn=96, vocab=100, kv_width=2 * 16, glu=True, tied=False)
    model = peft.get_peft_model(LlamaForCausalLM(cfg), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    assert count_parameters(model)[0] == arch.lora_params(4, ("q_proj", "v_proj", "down_proj"))
    base = LlamaForCausalLM(cfg)
    linear = sum(m.weight.numel() for n, m in base.named_modules() if n.startswith("model.layers") and hasattr(m, "in_features"))
    assert arch.block_params() == linear
    with pytest.raises(ValueError, match="no layer named"):
        arch.lora_params(4, ("qkv",))

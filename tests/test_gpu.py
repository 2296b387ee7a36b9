"""The GPU paths: training on cuda in mixed precision, prefixes and generation on cuda, checkpoints
that move between devices. Tiny random models, so no download; skipped without a CUDA GPU."""
import pytest
import torch

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.data import NER_LABELS
from ptutor.methods import FineTuneConfig, inject
from ptutor.methods.prefix import PrefixConfig
from ptutor.train import TrainConfig, fit, pick_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: these tests need one")
CUDA = torch.device("cuda")


def _tagging_batches(n=200, b=8, length=12, seed=0):
    """Nine distinct tokens, each with its own tag: learnable even on frozen random features."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        tags = torch.randint(0, len(NER_LABELS), (b, length), generator=g)
        yield {"input_ids": tags + 100, "attention_mask": torch.ones_like(tags), "labels": tags}


def _ids(b=2, length=7, seed=0):
    return torch.randint(100, 2000, (b, length), generator=torch.Generator().manual_seed(seed))


def test_pick_device_prefers_cuda():
    assert pick_device().type == "cuda"


@pytest.mark.parametrize("config", [FineTuneConfig(), PrefixConfig(num_virtual_tokens=8)], ids=["ft", "pt2"])
def test_mixed_precision_training_on_cuda_learns_and_keeps_the_frozen_weights(config):
    base, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    model = inject(base, config)
    frozen = {k: v.clone() for k, v in model.base.bert.named_parameters() if not v.requires_grad}
    hist = fit(model, _tagging_batches(), TrainConfig(lr=3e-3 if config.method == "ft" else 3e-2, steps=150,
                                                      mixed_precision=True, progress=False), device=CUDA)
    assert next(model.parameters()).device.type == "cuda"
    assert sum(hist.losses[-10:]) < 0.7 * sum(hist.losses[:10]), (hist.losses[:3], hist.losses[-3:])
    assert hist.peak_mb > 0
    for k, v in model.base.bert.named_parameters():
        if k in frozen:
            assert torch.equal(v.cpu(), frozen[k].cpu()), f"{k} changed although frozen"


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama", "tiny-glm"])
def test_prefix_logits_on_cuda_match_cpu(preset):
    base, _ = load_backbone(preset, "causal-lm", with_tokenizer=False)
    torch.manual_seed(1)
    model = inject(base, PrefixConfig(num_virtual_tokens=5)).eval()
    ids = _ids()
    with torch.no_grad():
        on_cpu = model(input_ids=ids).logits
        on_gpu = model.to(CUDA)(input_ids=ids.to(CUDA)).logits.cpu()
    assert (on_cpu - on_gpu).abs().max() < 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prefix_generation_on_cuda_equals_the_no_cache_loop(dtype):
    base, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    torch.manual_seed(1)
    model = inject(base, PrefixConfig(num_virtual_tokens=5)).eval()
    model.to(CUDA)  # moves the prefix ids buffer too
    model.base.to(dtype)  # a bf16 backbone; the prefix parameters stay fp32
    assert model.key_values(1)[0][0].dtype == dtype  # the prefix is cast to the backbone's dtype
    ids = _ids(1, 6).to(CUDA)
    cached = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
    uncached = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, pad_token_id=0, use_cache=False)
    assert cached.shape == (1, 12)
    if dtype == torch.float32:  # in bf16 the two paths round differently, so only fp32 must agree exactly
        assert torch.equal(cached, uncached)


def test_a_checkpoint_saved_on_cuda_loads_on_cpu(tmp_path):
    base, _ = load_backbone("tiny-gpt2", "causal-lm", with_tokenizer=False)
    torch.manual_seed(1)
    model = inject(base, PrefixConfig(num_virtual_tokens=5, prefix_projection=True)).to(CUDA).eval()
    checkpoint.save(model, tmp_path / "pt2")
    again = checkpoint.load(load_backbone("tiny-gpt2", "causal-lm", with_tokenizer=False)[0], tmp_path / "pt2").eval()
    ids = _ids()
    with torch.no_grad():
        want = model(input_ids=ids.to(CUDA)).logits.cpu()
        got = again(input_ids=ids).logits
    assert (want - got).abs().max() < 1e-3


def test_resume_on_cuda_restores_the_cuda_rng_and_the_fp16_grad_scaler(tmp_path):
    """Dropout on cuda draws from the CUDA generator; fp16 training keeps a loss scale: a resume keeps both."""
    import itertools

    def model():
        base, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
        torch.manual_seed(0)
        return inject(base, PrefixConfig(num_virtual_tokens=4, prefix_dropout=0.2)).to(CUDA)

    config = lambda **kw: TrainConfig(lr=1e-2, steps=8, mixed_precision=True, progress=False, **kw)  # noqa: E731
    whole = model()
    h_whole = fit(whole, _tagging_batches(8), config(), device=CUDA)
    half = model()
    opt = torch.optim.AdamW([p for p in half.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    h1 = fit(half, itertools.islice(_tagging_batches(8), 4), config(), device=CUDA, optimizer=opt)
    checkpoint.save_for_resume(half, opt, tmp_path, step=4, scaler=h1.scaler)
    torch.cuda.manual_seed_all(123)  # whatever runs in between must not matter
    resumed = checkpoint.load_for_resume(load_backbone("tiny-bert", "token-classification", labels=NER_LABELS,
                                                       with_tokenizer=False)[0], tmp_path, device=CUDA)
    h2 = fit(resumed.model, itertools.islice(_tagging_batches(8), 4, None), config(start_step=4), device=CUDA,
             optimizer=resumed.optimizer, scaler=resumed.scaler)
    assert (resumed.scaler is None) == (h1.scaler is None)  # bf16 GPUs need no scaler; fp16 ones keep theirs
    assert h1.losses + h2.losses == pytest.approx(h_whole.losses, abs=1e-4)


def test_qlora_trains_on_cuda_in_mixed_precision_and_merges_into_float():
    from ptutor.methods import QLoraConfig
    from ptutor.methods.lora import LoraLinear

    base, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    model = inject(base, QLoraConfig(r=4, blocksize=16))
    hist = fit(model, _tagging_batches(), TrainConfig(lr=1e-2, steps=100, mixed_precision=True, progress=False),
               device=CUDA)
    assert hist.losses[-1] < hist.losses[0]
    x = _ids().to(CUDA)
    with torch.no_grad():
        merged = model.merged_copy()
        assert not any(isinstance(m, LoraLinear) for m in merged.modules())
        assert (merged(input_ids=x).logits - model(input_ids=x).logits).abs().max() < 1e-3


def test_bitsandbytes_4bit_lora_trains_on_cuda():
    bnb = pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    base, _ = load_backbone("smollm2-135m", "causal-lm", quantization_config=quant, device_map={"": 0},
                            with_tokenizer=False)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in base.modules())
    model = get_peft_model(prepare_model_for_kbit_training(base, use_gradient_checkpointing=False),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    x = _ids(4, 16).to(CUDA)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(20):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def _offline_backbone(name):
    """The offline backbone's folder, or a skip that says how to get it."""
    from ptutor.backbones import ArtifactError, model_dir

    try:
        return model_dir(name)
    except ArtifactError as e:
        pytest.skip(f"{name} is not installed here: {str(e).splitlines()[-1]}")


def test_minilm_on_wnut17_trains_on_cuda_through_the_runner():
    """The book's runner on the real backbone and the real data, on cuda: the row says where it ran."""
    from pathlib import Path

    from ptutor.data import read_conll
    from ptutor.experiments import RunConfig, run

    _offline_backbone("minilm")
    data = Path(__file__).resolve().parents[1] / "data" / "wnut17"
    train, dev = read_conll(data / "train.conll", labels=None)[:512], read_conll(data / "dev.conll", labels=None)[:128]
    row = run(RunConfig.of("ner", "pt2", "minilm", train, dev, steps=40, lr=3e-2, device="cuda"))
    assert row["device"].startswith("cuda") and row["steps"] == 40
    assert row["peak_mb"] > 0 and 0 <= row["f1"] <= 1


def test_smollm2_prefix_generation_with_the_cache_on_cuda_equals_the_no_cache_loop():
    """Deep prompts through past_key_values on the real causal LM: the cached and the uncached loop agree."""
    _offline_backbone("smollm2-135m")
    base, tok = load_backbone("smollm2-135m", "causal-lm")
    torch.manual_seed(0)
    model = inject(base, PrefixConfig(num_virtual_tokens=8)).to(CUDA).eval()
    ids = tok("name[The Eagle], food[French] ->", return_tensors="pt").input_ids.to(CUDA)
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.eos_token_id)
    cached = model.generate(input_ids=ids, **kw)
    assert torch.equal(cached, model.generate(input_ids=ids, use_cache=False, **kw))
    with torch.autocast("cuda", dtype=torch.bfloat16):  # mixed precision decodes too
        assert model.generate(input_ids=ids, **kw).shape == cached.shape


def test_accelerate_launch_runs_a_one_gpu_shootout(tmp_path):
    """The README's `accelerate launch ... shootout` on one GPU: every run lands on cuda, once."""
    from test_shootout import accelerate_shootout

    _, rows = accelerate_shootout(tmp_path, 1, "probe,lora")
    assert sorted(r["method"] for r in rows) == ["lora", "probe"]
    assert all(r["device"].startswith("cuda") for r in rows), [r["device"] for r in rows]

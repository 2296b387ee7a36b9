"""standalone/: each method the chapters teach, in one file a reader copies into a project (torch and transformers
only), computes what ptutor's method computes.

For every file: it imports nothing but torch, transformers and the standard library; the minimal listing a chapter
builds first (MiniLoRA, MiniDoRA, MiniIA3, MiniAdapter, mini_bitfit, mini_quantize...) is the file's, letter for
letter; the chapter points to the file; and on a tiny random model, with the same trained values copied across, the
file's method gives ptutor's outputs (logits, losses, generated ids) and trains the same parameters (names mapped,
shapes equal).
"""
from __future__ import annotations

import ast
import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_base

from ptutor.arch import block_linear_patterns
from ptutor.methods import (AdapterConfig, BitFitConfig, DoraConfig, IA3Config, LoraConfig, PrefixConfig,
                            PromptTuningConfig, PTuningConfig, QLoraConfig, inject)
from ptutor.methods.prefix import activation_prefix

ROOT = Path(__file__).resolve().parents[1]
STANDALONE = ROOT / "standalone"
FILES = sorted(p.name for p in STANDALONE.glob("*.py"))
# the chapter listing -> the files that hold it, letter for letter
LISTINGS = {
    ("05_lora", "MiniLoRA"): ["lora.py", "dora.py", "qlora.py"],
    ("05_lora", "MiniAdapter"): ["adapters.py"],
    ("05_lora", "mini_bitfit"): ["bitfit.py"],
    ("05_lora", "MiniIA3"): ["ia3.py"],
    ("05_lora", "MiniDoRA"): ["dora.py"],
    ("06_qlora", "mini_quantize"): ["qlora.py"],
    ("06_qlora", "mini_dequantize"): ["qlora.py"],
}
# the chapter that teaches each file's method points to it
POINTERS = {"01_prompt_tuning": ["soft_prompts.py"], "02_p_tuning_v1": ["soft_prompts.py"],
            "03_p_tuning_v2_ner": ["prefix.py"], "04_deep_prompts_generation": ["prefix.py"],
            "05_lora": ["lora.py", "adapters.py", "bitfit.py", "ia3.py", "dora.py"], "06_qlora": ["qlora.py"]}
IDS = torch.randint(100, 2000, (2, 7), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])  # the second row padded on the right
LEFT = torch.tensor([[1] * 7, [0] * 2 + [1] * 5])  # ... on the left (a decoder's batched prompts)
TAGS = torch.randint(0, 9, (2, 7), generator=torch.Generator().manual_seed(1))


def load(name: str):
    """A standalone file as a module, without putting standalone/ on the path (as a reader's copy would be)."""
    spec = importlib.util.spec_from_file_location(f"standalone_{name[:-3]}", STANDALONE / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definition(source: str, name: str) -> str | None:
    """The source text of the top-level class or function `name` in `source`."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython magics
        return None
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return ast.get_source_segment(source, node)
    return None


def cells(chapter: str, kind: str) -> list[str]:
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def trainable(model: torch.nn.Module, rename=lambda n: n) -> dict[str, tuple]:
    return {rename(n): tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}


def ptutor_name(name: str) -> str:
    """ptutor's methods keep the model as `base`: its parameters are `base.<the model's name>`."""
    return name.removeprefix("base.")


def wrapper_name(name: str) -> str:
    """The standalone wrappers (soft prompts, prefix) keep it as `model`."""
    return name.removeprefix("model.")


def assert_close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert (a - b).abs().max().item() < atol, (a - b).abs().max().item()


# ----------------------------------------------------------------------------- the files themselves
@pytest.mark.parametrize("name", FILES)
def test_a_standalone_file_imports_only_torch_transformers_and_the_standard_library(name):
    tree = ast.parse((STANDALONE / name).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: a relative import (from .{node.module}) ties it to its folder"
            imported.add(node.module.split(".")[0])
    outside = imported - {"torch", "transformers"} - set(sys.stdlib_module_names)
    assert not outside, f"{name} imports {sorted(outside)}: a copied file must need torch and transformers only"
    assert ast.get_docstring(tree), f"{name} has no docstring saying what it is and how to use it"


def test_every_file_is_listed_here_and_pointed_to_by_its_chapter():
    assert sorted({f for files in POINTERS.values() for f in files}) == FILES
    for chapter, files in POINTERS.items():
        prose = "\n".join(cells(chapter, "markdown"))
        missing = [f for f in files if f"standalone/{f}" not in prose]
        assert not missing, f"chapter {chapter} does not point to {missing}"


@pytest.mark.parametrize(("chapter", "name"), sorted(LISTINGS))
def test_the_chapters_minimal_listing_is_the_files_letter_for_letter(chapter, name):
    in_chapter = [d for d in (definition(c, name) for c in cells(chapter, "code")) if d]
    assert len(in_chapter) == 1, f"{chapter} defines {name} {len(in_chapter)} times"
    for file in LISTINGS[chapter, name]:
        assert definition((STANDALONE / file).read_text(), name) == in_chapter[0], (
            f"standalone/{file}'s {name} differs from chapter {chapter}'s: change both")


# ----------------------------------------------------------------------------- the same numbers as ptutor
@pytest.fixture(scope="module")
def bases():
    """One tiny random model per family and task, copied by each test."""
    return {"bert": tiny_base("tiny-bert", "token-classification"), "llama": tiny_base("tiny-llama"),
            "gpt2": tiny_base("tiny-gpt2")}


def pair(bases, family: str):
    return copy.deepcopy(bases[family]).eval(), copy.deepcopy(bases[family]).eval()


def same_logits(ours, theirs, family: str, **batch) -> None:
    mask = LEFT if family != "bert" else MASK
    with torch.no_grad():
        a, b = ours(input_ids=IDS, attention_mask=mask, **batch), theirs(input_ids=IDS, attention_mask=mask, **batch)
    keep = mask.bool()
    assert_close(a.logits[keep], b.logits[keep])
    if a.loss is not None:
        assert_close(a.loss, b.loss)


LORA_LIKE = {  # file, function, ptutor config, {ptutor name piece: standalone name piece}
    "lora": ("lora.py", "add_lora", LoraConfig, {".lora_A.weight": ".A", ".lora_B.weight": ".B"}),
    "dora": ("dora.py", "add_dora", DoraConfig, {".lora_A.weight": ".A", ".lora_B.weight": ".B", ".magnitude": ".m"}),
}
TARGETS = {"bert": ["query", "value"], "llama": ["q_proj", "v_proj"]}
HEAD = {"bert": ["classifier"], "llama": []}


def renamed(mapping: dict[str, str]):
    def rename(name: str) -> str:
        name = ptutor_name(name)
        for theirs, mine in mapping.items():
            name = name.replace(theirs, mine)
        return name.replace(".base_layer.", ".layer.")
    return rename


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("method", sorted(LORA_LIKE))
def test_lora_and_dora_compute_ptutors_outputs_and_train_its_parameters(bases, method, family):
    file, add, config_class, mapping = LORA_LIKE[method]
    mini = load(file)
    a, b = pair(bases, family)
    theirs = inject(a, config_class(r=4, alpha=8, target_modules=TARGETS[family]))
    names = getattr(mini, add)(b, TARGETS[family], r=4, alpha=8, train_also=HEAD[family])
    assert sorted(names) == sorted(theirs.target_names)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, layer in theirs.lora_layers().items():
            mine = b.get_submodule(name)
            mine.B.normal_(std=0.5)  # trained-looking values: with B = 0 any mistake in A would pass
            layer.lora_A.weight.copy_(mine.A)
            layer.lora_B.weight.copy_(mine.B)
            if method == "dora":
                mine.m.mul_(torch.rand_like(mine.m) + 0.5)
                layer.magnitude.copy_(mine.m)
    labels = {"labels": TAGS} if family == "bert" else {"labels": IDS}
    same_logits(theirs, b, family, **labels)
    assert trainable(theirs, renamed(mapping)) == trainable(b)


def test_merging_the_lora_file_keeps_its_outputs(bases):
    mini = load("lora.py")
    model = copy.deepcopy(bases["llama"]).eval()
    mini.add_lora(model, ["q_proj", "k_proj", "v_proj", "o_proj"], r=4, alpha=8)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, mini.MiniLoRA):
                layer.B.normal_(std=0.5)
        before = model(input_ids=IDS).logits
        mini.merge_lora(model)
        after = model(input_ids=IDS).logits
    assert not any(isinstance(m, mini.MiniLoRA) for m in model.modules())
    assert_close(before, after, atol=1e-4)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_ia3_computes_ptutors_outputs_and_trains_its_parameters(bases, family):
    mini = load("ia3.py")
    a, b = pair(bases, family)
    theirs = inject(a, IA3Config())
    kv, ff = {"bert": (["key", "value"], [r"(.*\.)?layer\.\d+\.output\.dense"]),
              "llama": (["k_proj", "v_proj"], ["down_proj"])}[family]
    names = mini.add_ia3(b, kv, feedforward=ff, train_also=HEAD[family])
    assert sorted(names) == sorted(theirs.target_names)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, layer in theirs.ia3_layers().items():
            mine = b.get_submodule(name)
            assert mine.feedforward == layer.feedforward, name
            mine.l.normal_(1.0, 0.3)
            layer.ia3_l.copy_(mine.l)
    same_logits(theirs, b, family)
    assert trainable(theirs, renamed({".ia3_l": ".l"})) == trainable(b)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_adapters_compute_ptutors_outputs_and_train_its_parameters(bases, family):
    mini = load("adapters.py")
    a, b = pair(bases, family)
    theirs = inject(a, AdapterConfig(bottleneck=8))
    targets = {"bert": ["attention.output.dense", r"(.*\.)?layer\.\d+\.output\.dense"],
               "llama": ["o_proj", "down_proj"]}[family]
    names = mini.add_adapters(b, targets, bottleneck=8, train_also=HEAD[family])
    assert sorted(names) == sorted(theirs.target_names)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, layer in theirs.adapter_layers().items():
            mine = b.get_submodule(name)
            mine.up.weight.normal_(std=0.5)
            for part in ("down", "up"):
                getattr(layer, part).load_state_dict(getattr(mine, part).state_dict())
    same_logits(theirs, b, family)
    assert trainable(theirs, renamed({})) == trainable(b)


def test_bitfit_trains_the_biases_ptutor_trains(bases):
    mini = load("bitfit.py")
    a, b = pair(bases, "bert")
    theirs = inject(a, BitFitConfig())
    mine = mini.mini_bitfit(b)
    b.classifier.requires_grad_(True)  # as the file's docstring says: a new head trains whole
    assert [n for n in mine if not n.startswith("classifier.")] == [ptutor_name(n) for n in theirs.bias_names()]
    assert trainable(theirs, ptutor_name) == trainable(b)


def test_qlora_stores_ptutors_nf4_codes_and_computes_its_outputs(bases):
    mini = load("qlora.py")
    a, b = pair(bases, "llama")
    quantize = list(block_linear_patterns(a.config))
    theirs = inject(a, QLoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"], double_quant=False))
    mini.add_qlora(b, ["q_proj", "v_proj"], quantize=quantize, r=4, alpha=8)
    nf4 = {n.removesuffix(".layer"): m for n, m in b.named_modules() if isinstance(m, mini.NF4Linear)}
    assert sorted(nf4) == sorted(theirs.quantized_names)  # a LoRA target's NF4 layer sits inside its LoRA layer
    for name, mine in nf4.items():
        ours = theirs.base.get_submodule(name)
        ours = getattr(ours, "base_layer", ours)
        assert torch.equal(ours.packed, mine.packed) and torch.equal(ours.absmax, mine.absmax.view(-1)), name
    torch.manual_seed(0)
    with torch.no_grad():
        for name, layer in theirs.lora_layers().items():
            mine = b.get_submodule(name)
            mine.B.normal_(std=0.5)
            layer.lora_A.weight.copy_(mine.A)
            layer.lora_B.weight.copy_(mine.B)
    same_logits(theirs, b, "llama", labels=IDS)
    assert trainable(theirs, renamed({".lora_A.weight": ".A", ".lora_B.weight": ".B"})) == trainable(b)


def test_the_qlora_files_nf4_levels_and_listing_give_ptutors_weights():
    from ptutor.quant import dequantize_4bit, nf4_levels, quantize_4bit

    mini = load("qlora.py")
    assert torch.equal(mini.nf4_levels(), nf4_levels())
    w = torch.randn(96, 64, generator=torch.Generator().manual_seed(3)) * 0.05
    w[0] = 0  # a block of zeros stays zeros
    codes, absmax = mini.mini_quantize(w, mini.nf4_levels())
    assert torch.equal(mini.mini_dequantize(codes, absmax, mini.nf4_levels(), w.shape),
                       dequantize_4bit(quantize_4bit(w, nf4_levels(), blocksize=64)))


SOFT = {"pt": lambda mini, base, head: mini.PromptTuningModel(base, 5, train_also=head),
        "ptv1-mlp": lambda mini, base, head: mini.PTuningModel(base, 5, "mlp", 16, train_also=head),
        "ptv1-lstm": lambda mini, base, head: mini.PTuningModel(base, 5, "lstm", 16, train_also=head)}


def soft_config(kind: str):
    if kind == "pt":
        return PromptTuningConfig(num_virtual_tokens=5)
    return PTuningConfig(num_virtual_tokens=5, encoder=kind.split("-")[1], encoder_hidden_size=16)


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("kind", sorted(SOFT))
def test_prompt_tuning_and_p_tuning_compute_ptutors_outputs_and_train_its_parameters(bases, kind, family):
    mini = load("soft_prompts.py")
    a, b = pair(bases, family)
    theirs = inject(a, soft_config(kind)).eval()
    torch.manual_seed(0)
    mine = SOFT[kind](mini, b, HEAD[family]).eval()
    with torch.no_grad():
        if kind == "pt":
            theirs.prompt.copy_(mine.prompt)
        else:
            theirs.prompt_encoder.load_state_dict(mine.prompt_encoder.state_dict())
    labels = {"labels": TAGS if family == "bert" else IDS.masked_fill(LEFT == 0, -100)}
    same_logits(theirs, mine, family, **labels)
    assert trainable(theirs, ptutor_name) == trainable(mine, wrapper_name)
    if family == "llama":
        options = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
        assert torch.equal(theirs.generate(input_ids=IDS, attention_mask=LEFT, **options),
                           mine.generate(input_ids=IDS, attention_mask=LEFT, **options))


@pytest.mark.parametrize(("family", "projection"), [("bert", False), ("llama", False), ("gpt2", True)])
def test_prefix_tuning_computes_ptutors_outputs_and_trains_its_parameters(bases, family, projection):
    mini = load("prefix.py")
    a, b = pair(bases, family)
    theirs = inject(a, PrefixConfig(num_virtual_tokens=3, init="random", prefix_projection=projection,
                                    encoder_hidden_size=16 if projection else 0)).eval()
    torch.manual_seed(0)
    mine = mini.PrefixModel(b, 3, projection=projection, projection_hidden=16 if projection else 0,
                            train_also=HEAD.get(family, [])).eval()
    theirs.prefix_encoder.load_state_dict(mine.prefix_encoder.state_dict())
    same_logits(theirs, mine, family)
    assert trainable(theirs, ptutor_name) == trainable(mine, wrapper_name)
    if family != "bert":
        options = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
        assert torch.equal(theirs.generate(input_ids=IDS, attention_mask=LEFT, **options),
                           mine.generate(input_ids=IDS, attention_mask=LEFT, **options))


def test_a_prefix_started_from_tokens_holds_ptutors_activations(bases):
    mini = load("prefix.py")
    model = mini.PrefixModel(copy.deepcopy(bases["llama"]).eval(), 4)
    ids = torch.tensor([101, 202, 303, 404])
    model.init_from_tokens(ids)
    assert_close(model.prefix_encoder.embedding.weight, activation_prefix(bases["llama"].eval(), ids))

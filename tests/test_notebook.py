"""`show` prints the real ptutor source with the file it lives in, decorated functions included."""
import functools

import pytest
import torch

from ptutor import cache, train
from ptutor.book.notebook import show, source_of


def test_show_names_the_defining_file_and_prints_the_source():
    text = repr(show(train.fit))
    assert text.startswith("# defined in ptutor/train.py\n")
    assert "def fit(" in text


def test_show_unwraps_decorated_functions():
    @functools.wraps(cache.prefix_cache)
    def wrapper(*args, **kwargs):
        return cache.prefix_cache(*args, **kwargs)

    text = source_of(wrapper)
    assert text.startswith("# defined in ptutor/cache.py\n")
    assert "def prefix_cache(" in text and "def wrapper(" not in text


def test_show_joins_several_objects_in_order():
    text = repr(show(cache.check_fresh, cache.prefix_cache))
    assert text.index("def check_fresh(") < text.index("def prefix_cache(")
    assert text.count("# defined in ptutor/cache.py") == 2


def test_gpu_cell_skips_without_cuda_or_hub_and_raises_real_bugs(monkeypatch, capsys):
    from ptutor.backbones import ArtifactError
    from ptutor.book.notebook import gpu_cell

    called = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_cell(lambda: called.append(1), what="This cell trains BERT-base.") is None
    assert not called and "no CUDA GPU here. This cell trains BERT-base." in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for error in (OSError("We couldn't connect to 'https://huggingface.co'"), ConnectionError("offline"),
                  ArtifactError("hub preset bert-base-cased could not be downloaded")):
        def offline():
            raise error
        assert gpu_cell(offline) is None
        assert f"could not be loaded ({type(error).__name__}" in capsys.readouterr().out
    def bug():
        raise ValueError("a shape mismatch")
    with pytest.raises(ValueError, match="shape mismatch"):
        gpu_cell(bug)
    assert gpu_cell(lambda x: x + 1, 41) == 42

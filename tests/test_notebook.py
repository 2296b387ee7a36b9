"""`show` prints the real ptutor source with the file it lives in, decorated functions included."""
import functools

from ptutor import cache, train
from ptutor.notebook import show, source_of


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

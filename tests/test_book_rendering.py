"""The pieces that make the built book read as its sources, checked without building it.

- book/_ext/notebook_reader.py joins a cell's consecutive pieces of printed text into one output, and moves
  nothing past a display or the other stream;
- book/_ext/docstrings.py shows an indented block after "text:" in a docstring as code, and leaves lists and
  blocks already marked alone;
- ptutor.book.figures labels a figure with the size of its smallest text, and reads the label back from
  the PNG (what tests/test_book.py checks on the page);
- ptutor.book.notebook.setup turns bitsandbytes' one known import message into a line that says why it is
  harmless, and lets every other message through.
"""
from __future__ import annotations

import base64
import importlib.util
import logging
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ptutor_book_ext_{name}", ROOT / "book" / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def test_consecutive_pieces_of_one_stream_become_one_output_and_nothing_moves():
    reader = _load("notebook_reader")
    table = {"output_type": "display_data", "data": {"text/markdown": "| a |\n|---|\n| 1 |"}, "metadata": {}}
    outputs = [_stream("stdout", "step 1\n"), _stream("stdout", ["step 2\n", "step 3\n"]), table,
               _stream("stdout", "after the table\n"), _stream("stderr", "a warning\n"), _stream("stdout", "last\n")]
    joined = reader.join_adjacent_streams(outputs)
    assert [o["output_type"] for o in joined] == ["stream", "display_data", "stream", "stream", "stream"]
    assert joined[0]["text"] == "step 1\nstep 2\nstep 3\n"
    assert [o.get("name") for o in joined[2:]] == ["stdout", "stderr", "stdout"]
    assert joined[2]["text"] == "after the table\n" and joined[4]["text"] == "last\n"


def test_the_reader_reads_a_chapter_with_each_cells_printed_text_joined():
    reader = _load("notebook_reader")
    nb = reader.read((ROOT / "chapters" / "00_setup.ipynb").read_text(encoding="utf-8"))
    for cell in nb.cells:
        outs = cell.get("outputs", [])
        pairs = zip(outs, outs[1:])
        assert not any(a.output_type == b.output_type == "stream" and a.name == b.name for a, b in pairs)


def test_an_indented_block_after_a_colon_is_code_and_lists_stay_lists():
    docstrings = _load("docstrings")
    lines = ["Run it from a shell:", "", "    python -m ptutor.experiments ner --method pt2 \\",
             "        --steps 297", "", "Or from Python:", "    def f():", "        return run(config)",
             "", "It keeps:", "", "* its options", "* its rates", "Already literal::", "", "    x = 1",
             "A plain paragraph: no block follows.", "Next paragraph."]
    out = docstrings.mark_code_blocks(lines)
    assert out[0] == "Run it from a shell::"
    assert out[2:4] == lines[2:4], "the block itself is not changed"
    assert out[out.index("Or from Python::") + 1] == "", "a blank line is put in before a block that followed at once"
    assert "    def f():" in out and "    def f()::" not in out, "a line inside a block stays as it is"
    assert "It keeps:" in out and "Already literal::" in out and "Already literal:::" not in out
    assert "A plain paragraph: no block follows." in out


def test_a_figure_carries_its_smallest_text_size_and_it_reads_back():
    pytest.importorskip("IPython")
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from ptutor.book.figures import TEXT_KEY, png_with_text_size, smallest_text_px, text_size_of_png

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot([1, 2], [3, 4], label="a line")
    ax.legend(fontsize=7)
    ax.set_title("title", fontsize=12)
    assert smallest_text_px(fig) == pytest.approx(7 * 100 / 72)
    png = base64.b64decode(png_with_text_size(fig))
    assert TEXT_KEY.encode() in png
    assert text_size_of_png(png) == pytest.approx(7 * 100 / 72, abs=0.01)
    plt.close(fig)
    with pytest.raises(ValueError, match="not a PNG"):
        text_size_of_png(b"GIF89a")


def test_setup_explains_bitsandbytes_known_message_and_passes_any_other(monkeypatch):
    from ptutor.book import notebook

    def fake_import():  # what bitsandbytes does when it is imported on a CPU with AVX-512 BF16 and no `kernels`
        log = logging.getLogger("bitsandbytes.backends.cpu.ops")
        log.warning(notebook.BNB_KERNEL_MESSAGE + ": No module named 'kernels'. Please make sure ...")
        log.warning("some other message")

    monkeypatch.delitem(sys.modules, "bitsandbytes", raising=False)

    class Finder:  # `import bitsandbytes` runs fake_import instead of the real package
        def find_spec(self, name, path=None, target=None):
            if name != "bitsandbytes":
                return None
            return importlib.util.spec_from_loader(name, self)

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            fake_import()

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("bitsandbytes").addHandler(handler)
    try:
        note = notebook._import_bitsandbytes()
    finally:
        logging.getLogger("bitsandbytes").removeHandler(handler)
        sys.modules.pop("bitsandbytes", None)
    assert note and "kernels" in note and "same results" in note
    assert [r.getMessage() for r in records] == ["some other message"], "only the known message is taken"

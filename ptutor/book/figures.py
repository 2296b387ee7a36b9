"""Figures that say how small their text is, so the book can check that a reader can read it.

In a notebook, `setup()` calls `label_inline_figures()`: every matplotlib figure a cell shows is drawn as the
inline backend draws it (PNG, the figure's dpi, tight bounding box) and carries one PNG text entry,
"ptutor:min-text-px", the height of its smallest text in the PNG's own pixels (font size in points x dpi / 72).
A page that shows the image `shown` pixels wide out of its `natural` width shows that text at
min-text-px x shown / natural CSS pixels; tests/test_book.py checks that this is at least 9 px in the built book.
"""
from __future__ import annotations

TEXT_KEY = "ptutor:min-text-px"


def smallest_text_px(fig) -> float | None:
    """Height in pixels, at the figure's dpi, of the smallest visible text of `fig` (None: it has no text)."""
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels and legends get their text when the figure is drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72 if sizes else None


def png_with_text_size(fig) -> str | None:
    """The inline backend's PNG of `fig` (base64), with its smallest text size as the TEXT_KEY entry."""
    from IPython.core.pylabtools import print_figure

    px = smallest_text_px(fig)
    return print_figure(fig, "png", base64=True, metadata={TEXT_KEY: f"{px:.2f}"} if px else None)


def label_inline_figures() -> bool:
    """In an IPython kernel with the inline backend, show figures through `png_with_text_size`; True if so."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    import matplotlib

    if "inline" not in matplotlib.get_backend():
        return False
    # loading the backend installs its own PNG formatter, which must not replace this one afterwards
    import matplotlib_inline.backend_inline  # noqa: F401
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, png_with_text_size)
    return True


def save_png(fig, path, **kwargs) -> None:
    """`fig.savefig(path)` as a PNG that carries its smallest text size (for figures a page shows from a file)."""
    px = smallest_text_px(fig)
    fig.savefig(path, format="png", metadata={TEXT_KEY: f"{px:.2f}"} if px else None, **kwargs)


def png_text(data: bytes) -> dict[str, str]:
    """The text entries (tEXt, zTXt, iTXt) of a PNG file's bytes: matplotlib writes "Software", figures
    labelled here TEXT_KEY."""
    import struct
    import zlib

    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    found, pos = {}, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, _, rest = body.partition(b"\0")
            if kind == b"zTXt":
                rest = zlib.decompress(rest[1:])
            elif kind == b"iTXt":
                flag, rest = rest[0], rest[2:].split(b"\0", 2)[2]
                rest = zlib.decompress(rest) if flag else rest
            found[key.decode("latin-1")] = rest.decode("latin-1" if kind != b"iTXt" else "utf-8")
        if kind == b"IEND":
            break
        pos += 12 + length
    return found


def text_size_of_png(data: bytes) -> float | None:
    """The TEXT_KEY entry of a PNG file's bytes, or None if it has none."""
    value = png_text(data).get(TEXT_KEY)
    return float(value) if value is not None else None

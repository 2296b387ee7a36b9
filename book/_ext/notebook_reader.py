"""Read a chapter notebook for the book with each run of printed text in one output box, as Jupyter shows it.

A kernel sends what a cell prints in pieces (one message every fraction of a second while the cell runs), and
the executed notebook stores each piece as its own stream output; myst-nb drew a box per piece, so a cell that
printed four lines while it trained showed four boxes. Pieces of the same stream that follow each other are
joined here; nothing is moved past a table, a figure or the other stream (myst-nb's own nb_merge_streams
would move later prints above the displays between them). _config.yml names this reader for .ipynb files."""
from __future__ import annotations

import nbformat


def join_adjacent_streams(outputs: list) -> list:
    """The outputs with each run of consecutive stream outputs of one name (stdout, stderr) made one."""
    joined = []
    for out in outputs:
        last = joined[-1] if joined else None
        if (out.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                and last.get("name") == out.get("name")):
            last["text"] = "".join(last["text"]) + "".join(out["text"])
        else:
            joined.append(out)
    return joined


def read(text: str) -> nbformat.NotebookNode:
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and cell.get("outputs"):
            cell.outputs = join_adjacent_streams(cell.outputs)
    return nb

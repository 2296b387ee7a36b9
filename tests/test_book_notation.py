"""The notation page's model columns are the models' real configuration numbers."""
import re
from pathlib import Path

import pytest
from transformers import AutoConfig

from ptutor.arch import kv_layout
from ptutor.backbones import model_dir

PAGE = Path(__file__).resolve().parent.parent / "book" / "notation.md"


def table_rows() -> dict[str, list[str]]:
    rows = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("$"):
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("column,preset", [(2, "minilm"), (3, "smollm2-135m")])
def test_notation_table_numbers_match_the_model_configs(column, preset):
    config = AutoConfig.from_pretrained(model_dir(preset))
    lay = kv_layout(config)
    truth = {"$L$": lay.num_layers, "$D$": config.hidden_size, "$H$": config.num_attention_heads,
             "$H_{kv}$": lay.num_kv_heads, "$d$": lay.head_dim, "$V$": config.vocab_size}
    rows = table_rows()
    for symbol, value in truth.items():
        shown = int(re.sub(r"[,\s]", "", rows[symbol][column]))
        assert shown == value, f"notation.md says {symbol} = {shown} for {preset}; its config says {value}"

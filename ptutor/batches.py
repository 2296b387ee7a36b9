"""Encoded rows into padded tensor batches: `collate` one list of rows, `batches` a seeded endless stream of them."""
from __future__ import annotations

import torch

IGNORE_INDEX = -100  # label id that cross-entropy skips (special tokens, later sub-words, pads)


PAD_VALUES = {"attention_mask": 0, "labels": IGNORE_INDEX, "token_type_ids": 0}


def collate(rows: list[dict], pad_id: int = 0) -> dict:
    """Right-pad a list of encoded rows into tensors (labels padded with IGNORE_INDEX).

    Every key of the rows is kept: per-token lists are padded (input_ids with pad_id, other
    keys with PAD_VALUES or 0), per-row numbers become a 1-d tensor, anything else (e.g. an
    adapter name per row, for methods that route rows) stays a list.
    """
    batch = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], list):  # each key to its own longest row (an encoder-decoder's labels differ)
            width = max(len(v) for v in values)
            fill = pad_id if key == "input_ids" else PAD_VALUES.get(key, 0)
            batch[key] = torch.tensor([v + [fill] * (width - len(v)) for v in values])
        elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def batches(rows: list[dict], batch_size: int, *, pad_id: int = 0, shuffle: bool = False, seed: int = 0):
    """Yield collated batches; with shuffle, a new seeded order each epoch (endless).

    Shuffled batches are all full (the last partial batch of an epoch is dropped), except
    when there are fewer rows than `batch_size`: then every batch is all the rows.
    """
    if not rows:
        raise ValueError("no rows to batch: the data set is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not shuffle:
        for i in range(0, len(rows), batch_size):
            yield collate(rows[i:i + batch_size], pad_id)
        return
    g = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(rows))
    while True:
        order = torch.randperm(len(rows), generator=g).tolist()
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([rows[j] for j in order[i:i + batch_size]], pad_id)

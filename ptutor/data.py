"""Where the data helpers live (this module re-exports them, so `from ptutor.data import ...` keeps working):

- `ptutor.jsonl`: UTF-8 text and JSON-lines files (results logs, data files);
- `ptutor.batches`: encoded rows into padded batches;
- `ptutor.conll`: CoNLL tagging files and their encoding;
- `ptutor.realdata`: the E2E and WNUT-17 readers and cuts, and the hub loaders.
"""
from .batches import IGNORE_INDEX, PAD_VALUES, batches, collate  # noqa: F401
from .conll import (NER_LABELS, ConllFormatError, Sentence, align_labels, alignment_table, encode_ner,  # noqa: F401
                    is_bio_tag, model_words, ner_labels, read_conll, spaces_start_words, to_dataset, visible_words,
                    write_conll)
from .jsonl import append_jsonl, read_jsonl, text_lines, write_jsonl  # noqa: F401
from .realdata import (WNUT17_LABELS, e2e_input, e2e_values, load_conll2003_hub, load_e2e_hub,  # noqa: F401
                       load_wnut17_hub, read_e2e_csv, split_by_input)

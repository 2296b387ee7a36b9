"""What the command lines share: argument parsers for positive numbers."""
from __future__ import annotations

import argparse


def positive(kind):
    """An argparse type: `kind(text)`, refused unless greater than zero."""
    def parse(s):
        v = kind(s)
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {s}")
        return v
    return parse

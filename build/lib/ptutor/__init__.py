"""ptutor: small, tested helpers for the ptutor book (prompt tuning, P-Tuning, LoRA, QLoRA)."""
__version__ = "0.1.0"

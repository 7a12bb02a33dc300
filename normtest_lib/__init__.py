"""normtest: a reproducible notebook book about normalization in deep learning."""

__version__ = "0.1.0"

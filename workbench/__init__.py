"""GPT Workbench: train and study small GPT-style language models by pointing and clicking."""

__version__ = "0.1.0"

"""Data: sources (Hugging Face datasets, local files, bundled samples), preprocessing and
batching."""

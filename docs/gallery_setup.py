"""Run by sphinx-gallery before each example (``reset_modules`` in docs/conf.py)."""

from __future__ import annotations

import os


def reset_torch(gallery_conf, fname):
    """Every example starts with the same torch state: float32 default, at most 2 threads."""
    import torch

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

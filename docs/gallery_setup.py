"""Run by sphinx-gallery before each example (``reset_modules`` in docs/conf.py)."""

from __future__ import annotations

import os


def reset_torch(gallery_conf, fname):
    """Every example starts with the same torch state: float32 default, and ``$OMP_NUM_THREADS``
    threads when that is set (the test suite's build sets 1: small examples on a busy machine
    run many times slower with two spinning threads), else at most 2."""
    import torch

    torch.set_default_dtype(torch.float32)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(int(threads) if threads.isdigit() else min(2, os.cpu_count() or 1))

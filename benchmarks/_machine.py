"""The machine facts every benchmark's JSON starts with (versions, cores, load at the start)."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
import torch


def machine() -> dict:
    """Python, torch and numpy versions, CPU count, platform and the 1/5/15-minute load averages
    at the start (a benchmark adds ``load_average_end`` when it finishes)."""
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_start": list(os.getloadavg()),
    }

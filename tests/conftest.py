"""Shared test settings: hypothesis profiles and small helpers."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "default",
    deadline=None,
    max_examples=int(os.environ.get("NNGEOM_HYPOTHESIS_EXAMPLES", "100")),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("default")


@pytest.fixture
def one_thread():
    """Run a test with single-threaded torch: on 2 shared cores, small ops only lose to thread sync
    (and the executor's workers run tasks single-threaded too). Opt in per module with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def register_studies(monkeypatch):
    """``register(*studies)`` makes the study registry (``nngeom.studies.available``, read by
    ``nngeom reproduce NAME`` and ``nngeom report``) hold exactly ``studies``, e.g. the probe
    workload of ``_probe_study`` (not shipped in nngeom)."""
    import nngeom.studies

    def register(*studies):
        found = {s.name: s for s in studies}
        monkeypatch.setattr(nngeom.studies, "available", lambda: dict(found))

    return register

"""Shared fixtures: every test that takes ``device`` runs on cpu, and on cuda when a GPU
is there, so the whole suite runs unchanged on a GPU machine."""
import pytest

import gpuad

DEVICES = ["cpu"] + (["cuda"] if gpuad.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gpuad.manual_seed(0)

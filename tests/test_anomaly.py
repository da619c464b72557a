"""detect_anomaly names the op and the line that made the first NaN/Inf."""
import warnings

import pytest

import gpuad


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own divide warnings
        yield


def test_forward_nan_names_op_and_user_line(device):
    x = gpuad.tensor([-1.0, 4.0], requires_grad=True, device=device)
    with gpuad.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Log produced NaN in its forward.*"
                                                r"test_anomaly.py:\d+ \(x.log\(\)\)"):
            x.log()


def test_backward_nan_names_the_op_whose_backward_failed(device):
    x = gpuad.tensor([0.0, 4.0], requires_grad=True, device=device)
    with gpuad.autograd.detect_anomaly():
        y = (x.sqrt() * 0).sum()
        with pytest.raises(RuntimeError, match=r"the backward of Sqrt produced NaN.*"
                                                r"test_anomaly.py:\d+"):
            y.backward()


def test_off_by_default_and_restored(device):
    x = gpuad.tensor([-1.0], device=device)
    assert not gpuad.autograd.is_anomaly_enabled()
    with gpuad.autograd.detect_anomaly():
        assert gpuad.autograd.is_anomaly_enabled()
    assert not gpuad.autograd.is_anomaly_enabled()
    assert x.log().item() != x.log().item()  # NaN, and no error outside the context

"""``gpuad.cuda``: is a GPU there, how many, wait for it."""


def _cupy():
    try:
        import cupy
        return cupy
    except ImportError:
        return None


def is_available():
    """True when CuPy is installed and at least one CUDA GPU answers."""
    return device_count() > 0


def device_count():
    """How many CUDA GPUs CuPy sees (0 without CuPy, a driver or a GPU)."""
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CUDARuntimeError without a driver: no GPU, not an error here
        return 0


def synchronize(device=None):
    """Wait until every kernel queued on ``device`` (default cuda:0) has finished."""
    from .backends import backend_for
    from .device import device as _device
    backend_for(_device("cuda" if device is None else device)).synchronize()

"""``gpuad.cuda``: is a GPU there and usable (and if not, why), how many, wait for it."""


def _cupy():
    try:
        import cupy
        return cupy
    except ImportError:
        return None


def is_available():
    """True when gpuad can run on cuda:0: CuPy is installed, a CUDA GPU answers, and the
    CUDA libraries gpuad needs (cuRAND, cuBLAS, NVRTC) load. ``unavailable_reason()``
    says what is missing otherwise."""
    return unavailable_reason() is None


def unavailable_reason():
    """None when ``is_available()``; else the message of the error a cuda tensor would
    raise: what is missing (CuPy, a GPU, a CUDA library) and the install line."""
    from .backends.cuda import usable_cupy
    try:
        usable_cupy(0)
    except RuntimeError as e:
        return str(e)
    return None


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

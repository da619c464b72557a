"""``gpuad.cuda``: is a GPU there and usable (and if not, why), how many, wait for it;
the opt-in check of class targets."""
_class_index_checks = False


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


def set_class_index_checks(enabled):
    """Check the class targets of ``cross_entropy``, ``nll_loss`` and ``CrossEntropyLoss``
    on CUDA as the CPU always does: an IndexError naming the loss and the first target
    outside ``[0, C)``. Off by default, because each check reads the targets' range back
    to the host, a device sync at every loss. Unchecked, an out-of-range target gives its
    row a NaN loss and NaN gradients, so the mean loss is NaN (never a wrapped class's
    finite value). While on, a compiled step is replayed without CUDA graphs (a graph
    cannot read to the host); changing it makes compiled steps record again. One setting
    for the whole process (every thread, every GPU)."""
    global _class_index_checks
    from . import tracing
    _class_index_checks = bool(enabled)
    tracing.state_changed()


def class_index_checks():
    """Whether ``set_class_index_checks`` turned the CUDA check of class targets on."""
    return _class_index_checks

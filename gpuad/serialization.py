"""``save`` / ``load``: state dicts in an ``.npz`` that is never unpickled.

The archive holds one array per tensor (``t0``, ``t1``, ...) and ``structure``: a JSON
string describing the nested dicts/lists/tuples, numbers, strings and where each tensor
goes. Writes are atomic: a temp file in the target folder, fsync, then ``os.replace``,
so an interrupted save leaves the previous checkpoint intact.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .device import device as _device
from .tensor import Tensor

FORMAT = "gpuad-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable gpuad checkpoint (truncated, corrupt, foreign)."""


def save(obj, path):
    """Write ``obj`` (nested dicts, lists, tuples of tensors, numbers, strings, None) to
    ``path`` atomically.

    >>> gpuad.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.npz")
    """
    arrays = {}
    structure = json.dumps({"format": FORMAT, "version": VERSION,
                            "obj": _encode(obj, arrays, "obj")})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder!r} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, structure=np.array(structure), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _fsync_folder(folder)


def load(path, map_location=None):
    """Read what ``save`` wrote. Tensors go back to their saved device, or all to
    ``map_location`` (e.g. ``"cpu"`` for a checkpoint saved on a GPU), as plain tensors
    that do not require grad. A truncated, corrupt or foreign file raises
    ``CheckpointError``; nothing is returned half-read.

    >>> ckpt = gpuad.load("ckpt.npz", map_location="cpu")
    >>> model.load_state_dict(ckpt["model"])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no checkpoint file {path!r}")
    target = None if map_location is None else _device(map_location)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}  # reads (and CRC-checks) all
        header = json.loads(str(arrays.pop("structure")))
        if header.get("format") != FORMAT:
            raise ValueError("no gpuad checkpoint header")
        if header.get("version") != VERSION:
            raise ValueError(f"format version {header.get('version')}, this gpuad reads "
                             f"{VERSION}")
        return _decode(header["obj"], arrays, target)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"load: {path!r} is not a readable gpuad checkpoint ({type(e).__name__}: {e}); "
            "it may be truncated or corrupt: re-save it or use an earlier checkpoint") \
            from None


def _encode(obj, arrays, where):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Tensor):
        name = f"t{len(arrays)}"
        arrays[name] = obj._backend.to_host(obj.detach()._data)
        return {"tensor": name, "device": str(obj.device)}
    if isinstance(obj, dict):
        for k in obj:
            if not (k is None or isinstance(k, (str, int, float, bool))):
                raise TypeError(f"save: dict keys must be strings or numbers, got "
                                f"{type(k).__name__} at {where}")
        return {"dict": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"tuple": items} if isinstance(obj, tuple) else items
    raise TypeError(f"save: cannot store a {type(obj).__name__} at {where}; a checkpoint "
                    "holds tensors, numbers, strings, None and dicts/lists/tuples of them")


def _decode(node, arrays, target):
    if isinstance(node, list):
        return [_decode(v, arrays, target) for v in node]
    if not isinstance(node, dict):
        return node
    if "tensor" in node:
        from . import cuda
        from .factories import tensor
        dev = target or _device(node["device"])
        if dev.type == "cuda" and not cuda.is_available():
            raise RuntimeError(f"load: the checkpoint holds tensors saved on {dev} but CUDA "
                               "is not available here; pass map_location='cpu'")
        return tensor(arrays[node["tensor"]], device=dev)
    if "tuple" in node:
        return tuple(_decode(v, arrays, target) for v in node["tuple"])
    return {k: _decode(v, arrays, target) for k, v in node["dict"]}


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

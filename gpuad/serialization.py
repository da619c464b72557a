"""``save`` / ``load``: state dicts in an ``.npz`` that is never unpickled.

The archive holds one array per tensor (``t0``, ``t1``, ...) and ``structure``: a JSON
string describing the nested dicts/lists/tuples, numbers, strings and where each tensor
goes. Writes are atomic: a temp file in the target folder, fsync, then ``os.replace``,
so an interrupted save leaves the previous checkpoint intact; the temp file is named after
the target, host and process, so that the next save removes one a killed process left.
Reads check every size the file declares against what the file holds before allocating,
and read each array once, into the tensor that keeps it.
"""
import ast
import json
import os
import secrets
import socket
import stat
import struct
import zipfile

import numpy as np

from . import dtypes
from .device import device as _device
from .tensor import Tensor

FORMAT = "gpuad-checkpoint"
VERSION = 1
#: Nesting deeper than this in a checkpoint's structure is refused (state dicts are shallow).
MAX_DEPTH = 64
_DEFLATE_MAX_RATIO = 1032  # the most deflate can shrink data by
_NPY_MAGIC = b"\x93NUMPY"


class CheckpointError(ValueError):
    """A file that is not a readable gpuad checkpoint (truncated, corrupt, foreign)."""


def save(obj, path):
    """Write ``obj`` (nested dicts, lists, tuples of tensors, numbers, strings, None) to
    ``path`` atomically. An existing file keeps its permission bits; a new one gets the
    default mode of new files (``0o666`` less the umask).

    >>> gpuad.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.npz")
    """
    arrays = {}
    structure = json.dumps({"format": FORMAT, "version": VERSION,
                            "obj": _encode(obj, arrays, "obj")})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder!r} does not exist; create it first")
    _remove_stale_temps(folder, os.path.basename(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _create_temp(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, structure=np.array(structure), **arrays)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _temp_prefix(name):
    return f".{name}.tmp-"


def _create_temp(folder, name):
    """A new temp file for target ``name``: ``.<name>.tmp-<host>-<pid>-<random>``, created
    with mode 0o666 so that the umask applies as to any new file."""
    host = socket.gethostname().replace("-", "_")
    while True:
        tmp = os.path.join(folder, f"{_temp_prefix(name)}{host}-{os.getpid()}-"
                                   f"{secrets.token_hex(4)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _remove_stale_temps(folder, name):
    """Remove the temp files of earlier saves to ``name`` whose process, on this host, is
    gone (killed mid-save); a save still running elsewhere keeps its own."""
    host = socket.gethostname().replace("-", "_")
    prefix = _temp_prefix(name)
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        parts = entry[len(prefix):].split("-")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        if _process_alive(int(parts[1])):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
        except OSError:
            pass


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def load(path, map_location=None):
    """Read what ``save`` wrote. Tensors go back to their saved device, or all to
    ``map_location`` (e.g. ``"cpu"`` for a checkpoint saved on a GPU), as plain tensors
    that do not require grad. A truncated, corrupt, crafted or foreign file raises
    ``CheckpointError``; nothing is returned half-read.

    >>> ckpt = gpuad.load("ckpt.npz", map_location="cpu")
    >>> model.load_state_dict(ckpt["model"])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no checkpoint file {path!r}")
    target = None if map_location is None else _device(map_location)
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _Reader(archive, os.path.getsize(path))
            header = json.loads(reader.structure())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CheckpointError("no gpuad checkpoint header")
            if header.get("version") != VERSION:
                raise CheckpointError(f"format version {header.get('version')!r}, this gpuad "
                                      f"reads {VERSION}")
            return _Decoder(reader, target).decode(header.get("obj"), 0)
    except (CheckpointError, ValueError, KeyError, TypeError, OSError, EOFError,
            zipfile.BadZipFile, NotImplementedError, RecursionError, OverflowError,
            SyntaxError, struct.error) as e:
        if isinstance(e, FileNotFoundError) and not os.path.exists(path):
            raise
        raise CheckpointError(
            f"load: {path!r} is not a readable gpuad checkpoint ({type(e).__name__}: {e}); "
            "it may be truncated or corrupt: re-save it or use an earlier checkpoint") \
            from None


class _Reader:
    """The arrays of a checkpoint's zip archive, each checked against what the file
    holds before any memory is allocated for it, and read once."""

    def __init__(self, archive, file_size):
        self.archive, self.file_size = archive, file_size
        self.used = set()

    def structure(self):
        arr = self.array("structure")
        if arr.shape != () or arr.dtype.kind != "U":
            raise CheckpointError("the structure member is not a string")
        return str(arr)

    def array(self, name):
        if not isinstance(name, str) or name in self.used:
            raise CheckpointError(f"tensor {name!r} is missing or referenced twice")
        self.used.add(name)
        info = self.archive.getinfo(name + ".npy")  # KeyError: not in the archive
        self._check_member(info)
        with self.archive.open(info) as f:
            shape, dtype, fortran = self._header(f, info)
            arr = np.empty(shape, dtype, order="F" if fortran else "C")
            view = memoryview(arr.reshape(-1, order="A").view(np.uint8))  # arr's bytes
            filled = 0
            while filled < len(view):  # in 1 MiB chunks: a whole-array read() would copy
                chunk = f.read(min(1 << 20, len(view) - filled))
                if not chunk:
                    raise CheckpointError(f"member {name!r} ends before its data")
                view[filled:filled + len(chunk)] = chunk
                filled += len(chunk)
            if f.read(1):  # also makes zipfile check the CRC
                raise CheckpointError(f"member {name!r} holds more than its header says")
        return arr

    def _check_member(self, info):
        if info.flag_bits & 0x61:  # encrypted, patched or strongly encrypted
            raise CheckpointError(f"member {info.filename!r} is encrypted or patched")
        if info.compress_type == zipfile.ZIP_STORED:
            fits = info.file_size == info.compress_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            fits = info.file_size <= _DEFLATE_MAX_RATIO * info.compress_size + 64
        else:
            raise CheckpointError(f"member {info.filename!r} uses compression method "
                                  f"{info.compress_type}")
        if not fits or info.header_offset + info.compress_size > self.file_size:
            raise CheckpointError(f"member {info.filename!r} declares {info.file_size} bytes, "
                                  f"more than the {self.file_size}-byte file can hold")

    @staticmethod
    def _header(f, info):
        """Shape, dtype and order from a member's .npy header, checked against its size."""
        magic = f.read(8)
        if len(magic) != 8 or magic[:6] != _NPY_MAGIC or magic[6:] not in (b"\x01\x00",
                                                                           b"\x02\x00"):
            raise CheckpointError(f"member {info.filename!r} is not a .npy array")
        size_format = "<H" if magic[6] == 1 else "<I"
        raw = f.read(struct.calcsize(size_format))
        length = struct.unpack(size_format, raw)[0]
        if length > 10000:
            raise CheckpointError(f"member {info.filename!r} has a {length}-byte header")
        text = f.read(length)
        if len(text) != length:
            raise CheckpointError(f"member {info.filename!r} ends inside its header")
        meta = ast.literal_eval(text.decode("latin1"))
        if not isinstance(meta, dict) or set(meta) != {"descr", "fortran_order", "shape"}:
            raise CheckpointError(f"member {info.filename!r} has a malformed header")
        shape, fortran = meta["shape"], meta["fortran_order"]
        if not (isinstance(shape, tuple) and all(type(s) is int and s >= 0 for s in shape)
                and isinstance(fortran, bool) and isinstance(meta["descr"], str)):
            raise CheckpointError(f"member {info.filename!r} has a malformed header")
        dtype = np.dtype(meta["descr"])
        if dtype.kind != "U":
            dtypes.as_dtype(dtype)  # TypeError: not a dtype gpuad holds
        nbytes = dtype.itemsize
        for s in shape:
            nbytes *= s
        data_size = info.file_size - (8 + len(raw) + length)
        if nbytes != data_size:
            raise CheckpointError(f"member {info.filename!r} declares {nbytes} bytes of data "
                                  f"but holds {data_size}")
        return shape, dtype, fortran


class _Decoder:
    """The object a structure describes, its tensors read from the archive."""

    def __init__(self, reader, target):
        self.reader, self.target = reader, target

    def decode(self, node, depth):
        if depth > MAX_DEPTH:
            raise CheckpointError(f"the structure nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise CheckpointError(f"unexpected node {type(node).__name__} in the structure")
        if "tensor" in node:
            return self.tensor(node)
        if "tuple" in node and isinstance(node["tuple"], list):
            return tuple(self.decode(v, depth + 1) for v in node["tuple"])
        items = node.get("dict")
        if not isinstance(items, list) or not all(
                isinstance(kv, list) and len(kv) == 2 and (kv[0] is None or isinstance(
                    kv[0], (str, int, float, bool))) for kv in items):
            raise CheckpointError("a dict node of the structure is malformed")
        return {k: self.decode(v, depth + 1) for k, v in items}

    def tensor(self, node):
        from . import cuda
        from .backends import backend_for
        dev = self.target or _device(node.get("device"))
        if dev.type == "cuda" and not cuda.is_available():
            raise RuntimeError(f"load: the checkpoint holds tensors saved on {dev} but CUDA "
                               "is not available here; pass map_location='cpu'")
        arr = self.reader.array(node["tensor"])
        if arr.dtype.kind == "U":
            raise CheckpointError(f"tensor {node['tensor']!r} holds text")
        backend = backend_for(dev)
        if dev.type != "cpu":
            arr = backend.asarray(arr)  # the host copy is dropped right after
        return Tensor._make(arr, backend)


def _encode(obj, arrays, where, depth=0):
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {where} nests deeper than {MAX_DEPTH} levels, more than "
                         "load reads back; flatten the object")
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
        return {"dict": [[k, _encode(v, arrays, f"{where}[{k!r}]", depth + 1)]
                         for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
        return {"tuple": items} if isinstance(obj, tuple) else items
    raise TypeError(f"save: cannot store a {type(obj).__name__} at {where}; a checkpoint "
                    "holds tensors, numbers, strings, None and dicts/lists/tuples of them")


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

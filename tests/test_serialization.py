"""gpuad.save / gpuad.load: exact round trips, clear errors, atomic writes, file modes,
stale temp files, one copy in memory, and CheckpointError for every crafted or corrupt
file (a derandomized fuzz over corruptions)."""
import io
import json
import os
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.serialization import CheckpointError


def _model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _train(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = gpuad.tensor(rng.standard_normal((16, 6)).astype(np.float32))
        y = gpuad.tensor(rng.integers(0, 3, 16))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_structure_round_trip(tmp_path):
    obj = {"a": gpuad.tensor([1.5, 2.0]), "ints": gpuad.arange(4),
           "f64": gpuad.randn(2, 3, dtype=gpuad.float64), "mask": gpuad.tensor([True, False]),
           "scalar": gpuad.tensor(3.0), 0: {"step": 7, "lr": 0.1, "name": "x", "none": None},
           "list": [1, (2, 3.5), ["s"]], "betas": (0.9, 0.999), "flag": True,
           "big": np.int64(5), "empty": gpuad.zeros(0, 3)}
    gpuad.save(obj, tmp_path / "c.npz")
    back = gpuad.load(tmp_path / "c.npz")
    assert list(back) == list(obj)
    for k in ("a", "ints", "f64", "mask", "scalar", "empty"):
        assert back[k].dtype == obj[k].dtype and back[k].shape == obj[k].shape
        assert np.array_equal(back[k].numpy(), obj[k].numpy())
    assert back[0] == obj[0] and back["list"] == [1, (2, 3.5), ["s"]]
    assert back["betas"] == (0.9, 0.999) and back["flag"] is True and back["big"] == 5
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        assert "structure.npy" in z.namelist()


def test_map_location(tmp_path, device):
    gpuad.save({"w": gpuad.ones(2, device=device)}, tmp_path / "c.npz")
    assert gpuad.load(tmp_path / "c.npz")["w"].device == gpuad.device(device)
    assert gpuad.load(tmp_path / "c.npz", map_location="cpu")["w"].device == gpuad.device("cpu")


@pytest.mark.parametrize("opt_cls", [gpuad.optim.Adam, gpuad.optim.SGD])
def test_model_and_optimizer_resume_identically(tmp_path, opt_cls):
    kw = dict(lr=0.01) if opt_cls is gpuad.optim.Adam else dict(lr=0.1, momentum=0.9)
    model = _model()
    opt = opt_cls(model.parameters(), **kw)
    _train(model, opt, 3, seed=0)
    gpuad.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.npz")
    _train(model, opt, 3, seed=1)

    gpuad.manual_seed(123)  # a different init: everything must come from the file
    fresh = _model()
    fresh_opt = opt_cls(fresh.parameters(), **kw)
    ckpt = gpuad.load(tmp_path / "c.npz")
    fresh.load_state_dict(ckpt["model"])
    fresh_opt.load_state_dict(ckpt["optimizer"])
    _train(fresh, fresh_opt, 3, seed=1)
    for k, v in _snapshot(model).items():
        assert np.array_equal(v, _snapshot(fresh)[k]), k


def _corrupt_variants(good):
    data = good.read_bytes()
    mid = len(data) // 2
    flipped = bytearray(data)
    flipped[mid:mid + 16] = bytes(b ^ 0xFF for b in flipped[mid:mid + 16])
    return {"truncated": data[:mid], "flipped": bytes(flipped), "empty": b"",
            "garbage": os.urandom(300)}


@pytest.mark.parametrize("kind", ["truncated", "flipped", "empty", "garbage"])
def test_damaged_files_raise_clearly_and_leave_model_unchanged(tmp_path, kind):
    model = _model()
    gpuad.save(_model().state_dict(), tmp_path / "good.npz")
    bad = tmp_path / f"{kind}.npz"
    bad.write_bytes(_corrupt_variants(tmp_path / "good.npz")[kind])
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match=f"{kind}.npz.*not a readable gpuad checkpoint"):
        model.load_state_dict(gpuad.load(bad))
    assert all(np.array_equal(v, before[k]) for k, v in _snapshot(model).items())


def test_foreign_npz_and_missing_file(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    with pytest.raises(CheckpointError, match="plain.npz"):
        gpuad.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        gpuad.load(tmp_path / "nothere.npz")


def test_mismatched_checkpoint_leaves_model_unchanged(tmp_path):
    other = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    gpuad.save(other.state_dict(), tmp_path / "other.npz")
    model = _model()
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match=r"0.weight: shape \(4, 6\) in the state dict"):
        model.load_state_dict(gpuad.load(tmp_path / "other.npz"))
    assert all(np.array_equal(v, before[k]) for k, v in _snapshot(model).items())


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    gpuad.save({"w": gpuad.ones(3)}, path)

    def dies_midway(f, **arrays):
        f.write(b"PK partial bytes")
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        gpuad.save({"w": gpuad.zeros(3)}, path)
    monkeypatch.undo()
    assert gpuad.load(path)["w"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["c.npz"]  # no temp file left behind


def test_save_errors(tmp_path):
    with pytest.raises(TypeError, match=r"object at obj\['bad'\]"):
        gpuad.save({"bad": object()}, tmp_path / "c.npz")
    with pytest.raises(TypeError, match="dict keys"):
        gpuad.save({(1, 2): 3}, tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gpuad.save({}, tmp_path / "no" / "c.npz")
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper than 64"):
        gpuad.save(deep, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


# --- file modes and temp files --------------------------------------------------------------
def test_save_keeps_an_existing_files_mode(tmp_path):
    path = tmp_path / "c.npz"
    for mode in (0o600, 0o640, 0o664):
        path.write_bytes(b"old")
        os.chmod(path, mode)
        gpuad.save({"w": gpuad.ones(2)}, path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert gpuad.load(path)["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_new_file_gets_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        gpuad.save({"w": gpuad.ones(2)}, tmp_path / "c.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "c.npz").st_mode) == 0o666 & ~umask


def _temps(folder):
    return sorted(p for p in os.listdir(folder) if ".tmp-" in p)


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    path = tmp_path / "c.npz"
    gpuad.save({"w": gpuad.ones(3)}, path)
    killed = ("import os, numpy, gpuad\n"
              "def dies(f, **arrays):\n"
              "    f.write(b'PK partial'); f.flush(); os._exit(9)\n"
              "numpy.savez = dies\n"
              f"gpuad.save({{'w': gpuad.zeros(3)}}, {str(path)!r})\n")
    assert subprocess.run([sys.executable, "-c", killed]).returncode == 9
    assert len(_temps(tmp_path)) == 1
    assert gpuad.load(path)["w"].tolist() == [1.0] * 3
    gpuad.save({}, tmp_path / "d.npz")
    assert len(_temps(tmp_path)) == 1  # temps of another target stay
    running = _temps(tmp_path)[0].replace(
        _temps(tmp_path)[0].split("-")[-2], str(os.getppid()))  # a live process's temp
    (tmp_path / running).write_bytes(b"in progress")
    gpuad.save({"w": gpuad.full((3,), 2.0)}, path)
    assert _temps(tmp_path) == [running]
    assert gpuad.load(path)["w"].tolist() == [2.0] * 3


# --- reading without a second copy ------------------------------------------------------------
def test_load_reads_each_array_once(tmp_path):
    n = 5_000_000  # 20 MB of float32 over four tensors
    obj = {f"w{i}": gpuad.ones(n // 4) for i in range(4)}
    gpuad.save(obj, tmp_path / "big.npz")
    del obj
    tracemalloc.start()
    try:
        back = gpuad.load(tmp_path / "big.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.15 * 4 * n, f"load peaked at {peak / 4 / n:.2f}x the checkpoint's size"
    assert all(t.numpy().sum() == n // 4 for t in back.values())


# --- crafted and corrupt files -----------------------------------------------------------------
def _npy(arr=None, header=None, data=b""):
    """A .npy member: ``arr`` written by NumPy, or a raw header dict and data bytes."""
    buf = io.BytesIO()
    if arr is not None:
        np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
        return buf.getvalue()
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def _archive(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _structure(obj):
    return _npy(np.array(json.dumps({"format": "gpuad-checkpoint", "version": 1, "obj": obj})))


_T0 = {"tensor": "t0", "device": "cpu"}
CRAFTED = {
    "header_is_a_list": {"structure.npy": _npy(np.array("[1, 2]"))},
    "header_is_a_number": {"structure.npy": _npy(np.array("7"))},
    "deep_json": {"structure.npy": _npy(np.array("[" * 100_000 + "]" * 100_000))},
    "deep_structure": {"structure.npy": _structure(json.loads("[" * 500 + "]" * 500))},
    "member_declares_8_tib": {"structure.npy": _structure(_T0), "t0.npy": _npy(
        header={"descr": "<f4", "fortran_order": False, "shape": (2 ** 41,)},
        data=b"\0" * 16)},
    "member_declares_more_than_it_holds": {"structure.npy": _structure(_T0), "t0.npy": _npy(
        header={"descr": "<f4", "fortran_order": False, "shape": (5,)}, data=b"\0" * 16)},
    "negative_shape": {"structure.npy": _structure(_T0), "t0.npy": _npy(
        header={"descr": "<f4", "fortran_order": False, "shape": (-4,)}, data=b"\0" * 16)},
    "object_dtype": {"structure.npy": _structure(_T0), "t0.npy": _npy(
        header={"descr": "|O", "fortran_order": False, "shape": (2,)}, data=b"\0" * 16)},
    "unsupported_dtype": {"structure.npy": _structure(_T0),
                          "t0.npy": _npy(np.zeros(3, np.uint16))},
    "text_tensor": {"structure.npy": _structure(_T0), "t0.npy": _npy(np.array("abc"))},
    "structure_not_text": {"structure.npy": _npy(np.zeros(3))},
    "structure_missing": {"t0.npy": _npy(np.zeros(3))},
    "tensor_missing": {"structure.npy": _structure(_T0)},
    "tensor_twice": {"structure.npy": _structure([_T0, _T0]), "t0.npy": _npy(np.zeros(3))},
    "tensor_name_not_text": {"structure.npy": _structure({"tensor": 3, "device": "cpu"})},
    "bad_device": {"structure.npy": _structure({"tensor": "t0", "device": "tpu"}),
                   "t0.npy": _npy(np.zeros(3))},
    "dict_node_malformed": {"structure.npy": _structure({"dict": [[1, 2, 3]]})},
    "dict_node_not_list": {"structure.npy": _structure({"dict": 5})},
    "dict_key_unhashable": {"structure.npy": _structure({"dict": [[[1], 2]]})},
    "unknown_node": {"structure.npy": _structure({"other": 1})},
    "not_npy": {"structure.npy": b"just some bytes here"},
    "header_not_a_dict": {"structure.npy": _npy(header=[1, 2])},
    "header_bad_syntax": {"structure.npy": b"\x93NUMPY\x01\x00\x08\x00{'a': (\n"},
    "header_huge_length": {"structure.npy": b"\x93NUMPY\x01\x00\xff\xff" + b" " * 100},
    "wrong_version": {"structure.npy": _npy(np.array(json.dumps(
        {"format": "gpuad-checkpoint", "version": 99, "obj": 1})))},
}


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_files_raise_checkpoint_error(tmp_path, kind):
    path = tmp_path / f"{kind}.npz"
    _archive(path, CRAFTED[kind])
    with pytest.raises(CheckpointError, match="not a readable gpuad checkpoint"):
        gpuad.load(path)


def _set_flag_bits(data, bits):
    """The zip with general purpose flag ``bits`` set on every member, in the local headers
    and in the central directory."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = out.find(sig)
        while i != -1:
            out[i + at:i + at + 2] = struct.pack("<H", struct.unpack(
                "<H", bytes(out[i + at:i + at + 2]))[0] | bits)
            i = out.find(sig, i + 4)
    return bytes(out)


def _set_compression(data, method):
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = out.find(sig)
        while i != -1:
            out[i + at:i + at + 2] = struct.pack("<H", method)
            i = out.find(sig, i + 4)
    return bytes(out)


@pytest.mark.parametrize("change", [
    lambda d: _set_flag_bits(d, 0x1), lambda d: _set_flag_bits(d, 0x20),
    lambda d: _set_flag_bits(d, 0x40), lambda d: _set_compression(d, 99),
    lambda d: _set_compression(d, zipfile.ZIP_BZIP2), lambda d: _set_compression(d, 8),
], ids=["encrypted", "patched", "strong_encryption", "unknown_method", "bzip2", "deflate"])
def test_flipped_zip_flags_and_methods_raise_checkpoint_error(tmp_path, change):
    gpuad.save({"w": gpuad.arange(10).float()}, tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(change((tmp_path / "good.npz").read_bytes()))
    with pytest.raises(CheckpointError, match="not a readable gpuad checkpoint"):
        gpuad.load(bad)


def _mutations(data, rng, count):
    """Derandomized corruptions of ``data``: bit flips, overwritten and removed runs,
    duplicated runs and truncations, anywhere in the file."""
    for _ in range(count):
        out = bytearray(data)
        kind = rng.integers(5)
        i = int(rng.integers(len(out)))
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                j = int(rng.integers(len(out)))
                out[j] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            n = int(rng.integers(1, 9))
            out[i:i + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 2:
            del out[i:i + int(rng.integers(1, 64))]
        elif kind == 3:
            out[i:i] = out[i:i + int(rng.integers(1, 64))]
        else:
            del out[i:]
        yield bytes(out)


def test_fuzzed_checkpoints_raise_checkpoint_error_or_load_unchanged(tmp_path):
    """400 corruptions of a real checkpoint: each either raises CheckpointError or (where
    the bytes hit do not matter, as a zip comment) loads exactly what was saved."""
    obj = {"model": {"w": gpuad.randn(3, 4), "b": gpuad.arange(3)}, "step": 7,
           "betas": (0.9, 0.999), "names": ["a", None], "mask": gpuad.tensor([True, False])}
    gpuad.save(obj, tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    rng = np.random.default_rng(15)
    bad = tmp_path / "bad.npz"
    loaded = 0
    for data_i in _mutations(data, rng, 400):
        bad.write_bytes(data_i)
        try:
            back = gpuad.load(bad)
        except CheckpointError:
            continue
        loaded += 1
        assert back["step"] == 7 and back["betas"] == (0.9, 0.999)
        assert back["names"] == ["a", None]
        for k in ("w", "b"):
            assert np.array_equal(back["model"][k].numpy(), obj["model"][k].numpy())
        assert back["mask"].tolist() == [True, False]
    assert loaded < 200  # most corruptions must be noticed

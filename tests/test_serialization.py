"""gpuad.save / gpuad.load: exact round trips, clear errors, atomic writes."""
import os
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
    assert not (tmp_path / "c.npz").exists()

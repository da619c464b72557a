"""End to end: an MLP learns the real digits; the training example runs and writes its
curves and checkpoint."""
import importlib.util
import os

import pytest

import gpuad
from gpuad import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlp_learns_digits(device):
    pytest.importorskip("sklearn")  # load_digits' data
    train_x, train_y, test_x, test_y = gpuad.data.load_digits(device)
    model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.LayerNorm(128), nn.Dropout(0.1),
                          nn.Linear(128, 10)).to(device)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = gpuad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    loader = gpuad.data.DataLoader(gpuad.data.TensorDataset(train_x, train_y),
                                   batch_size=64, shuffle=True, seed=0)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(5):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with gpuad.no_grad():
        acc = (model(test_x).argmax(1) == test_y).float().mean().item()
    assert acc >= 0.95


def test_train_example_end_to_end(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")  # its loss curves
    train_mlp = _example("train_mlp")
    summary = train_mlp.main(["--epochs", "4", "--device", "cpu", "--out", str(tmp_path)])
    assert summary["accuracy"] >= 0.95 and summary["device"] == "cpu"
    assert summary["samples_per_second"] > 0
    out = capsys.readouterr().out
    assert "final test accuracy" in out and "samples/s" in out
    assert (tmp_path / "curves.png").stat().st_size > 1000
    ckpt = gpuad.load(tmp_path / "mlp.npz")
    model = train_mlp.build_model(64, ckpt["hidden"], 10)
    model.load_state_dict(ckpt["model"])
    _, _, test_x, test_y = gpuad.data.load_digits()
    assert train_mlp.accuracy(model, test_x, test_y) == pytest.approx(summary["accuracy"])


def test_train_example_argument_errors(capsys):
    train_mlp = _example("train_mlp")
    with pytest.raises(SystemExit):
        train_mlp.parse_args(["--hidden", "256,abc"])
    assert "--hidden" in capsys.readouterr().err
    if not gpuad.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA GPU"):
            train_mlp.pick_device("cuda")


def test_small_examples_run(capsys):
    _example("select_device").main("cpu")
    _example("custom_op").main()
    _example("cpu_vs_gpu").main(["--steps", "1", "--batch-size", "8", "--hidden", "16"])
    out = capsys.readouterr().out
    assert "using cpu" in out and "gradcheck against finite differences: passed" in out
    assert "cpu  compiled:" in out
    if not gpuad.cuda.is_available():
        assert "GPU unavailable" in out

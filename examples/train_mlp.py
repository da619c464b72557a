"""Train an MLP classifier on real handwritten digits (the README's ``./dev train``).

    python examples/train_mlp.py                       # bundled 8x8 digits, auto device
    python examples/train_mlp.py --device cpu --optimizer sgd --lr 0.05
    python examples/train_mlp.py --data mnist.npz --hidden 512,256 --epochs 10

Shows a progress bar per epoch, the test accuracy after each, and writes the loss and
accuracy curves (``curves.png``) and a checkpoint (``mlp.npz``, see ``gpuad.load``) to
``--out``.
"""
import argparse
import os
import sys
import time

import gpuad
from gpuad import nn

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: cuda when a GPU is available, else cpu")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.05 for sgd, 1e-3 for adam/adamw)")
    p.add_argument("--optimizer", default="adam", choices=sorted(DEFAULT_LR))
    p.add_argument("--hidden", default="256,256", help="hidden layer widths, e.g. 256,256")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="replay the training step with gpuad.compile (--no-compile: eager)")
    p.add_argument("--data", default=None,
                   help="an MNIST .npz (x_train, y_train, x_test, y_test); default: the "
                        "digits bundled with scikit-learn")
    p.add_argument("--out", default="runs", help="folder for curves.png and mlp.npz")
    args = p.parse_args(argv)
    try:
        args.hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    except ValueError:
        p.error(f"--hidden takes comma-separated widths like 256,256, got {args.hidden!r}")
    if any(h <= 0 for h in args.hidden):
        p.error("--hidden widths must be positive")
    if args.epochs <= 0 or args.batch_size <= 0:
        p.error("--epochs and --batch-size must be positive")
    args.lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    return args


def pick_device(name):
    """``auto`` becomes cuda when available; an unavailable cuda is a clear exit."""
    if name == "auto":
        return "cuda" if gpuad.cuda.is_available() else "cpu"
    if name == "cuda" and not gpuad.cuda.is_available():
        sys.exit("error: --device cuda was asked for but no CUDA GPU is usable here (CuPy "
                 "missing or no GPU/driver); install gpuad[cuda12] on a GPU machine, or use "
                 "--device cpu / auto")
    return name


def build_model(in_features, hidden, classes):
    """Linear+ReLU blocks (each runs as one fused op inside Sequential), then a Linear."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def make_optimizer(name, params, lr):
    if name == "sgd":
        return gpuad.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    return {"adam": gpuad.optim.Adam, "adamw": gpuad.optim.AdamW}[name](params, lr=lr)


def accuracy(model, x, y, batch_size=1024):
    """Test accuracy, without recording a graph."""
    model.eval()
    correct = 0
    with gpuad.no_grad():
        for i in range(0, len(x), batch_size):
            pred = model(x[i:i + batch_size]).argmax(1)
            correct += int((pred == y[i:i + batch_size]).sum().item())
    model.train()
    return correct / len(x)


def train(args):
    """Run the whole training; returns the per-epoch history and the summary figures."""
    from tqdm import tqdm
    device = pick_device(args.device)
    gpuad.manual_seed(args.seed)
    if args.data:
        train_x, train_y, test_x, test_y = gpuad.data.load_mnist_npz(args.data, device)
    else:
        train_x, train_y, test_x, test_y = gpuad.data.load_digits(device, seed=args.seed)
    classes = int(train_y.max().item()) + 1
    model = build_model(train_x.shape[1], args.hidden, classes).to(device)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr)
    loss_fn = nn.CrossEntropyLoss()
    loader = gpuad.data.DataLoader(gpuad.data.TensorDataset(train_x, train_y),
                                   batch_size=args.batch_size, shuffle=True, seed=args.seed)
    print(f"device {device}: {len(train_x)} train / {len(test_x)} test samples, "
          f"{train_x.shape[1]} features, {classes} classes\n{model}")

    def train_step(x, y):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()
    if args.compile:  # record the step twice, then replay it without autograd bookkeeping
        train_step = gpuad.compile(train_step)

    history = {"loss": [], "accuracy": []}
    train_seconds, samples = 0.0, 0
    for epoch in range(1, args.epochs + 1):
        start, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", unit="batch", leave=False)
        for step, (x, y) in enumerate(bar):
            loss = train_step(x, y)
            total += loss.item() * len(x)  # .item() also waits for the GPU: fair timing
            seen += len(x)
            if step % 10 == 0:
                rate = seen / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{total / seen:.4f}", samples_s=f"{rate:,.0f}")
        train_seconds += time.perf_counter() - start
        samples += seen
        history["loss"].append(total / seen)
        history["accuracy"].append(accuracy(model, test_x, test_y))
        print(f"epoch {epoch:3d}  loss {history['loss'][-1]:.4f}  "
              f"test accuracy {history['accuracy'][-1]:.2%}")
    summary = {"device": device, "train_seconds": train_seconds,
               "samples_per_second": samples / train_seconds,
               "accuracy": history["accuracy"][-1]}
    return model, optimizer, history, summary


def plot(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"], marker="o")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    ax_acc.plot(epochs, [100 * a for a in history["accuracy"]], marker="o", color="C1")
    ax_acc.set(title="test accuracy", xlabel="epoch", ylabel="%")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    wall = time.perf_counter()
    model, optimizer, history, summary = train(args)
    os.makedirs(args.out, exist_ok=True)
    curves, ckpt = os.path.join(args.out, "curves.png"), os.path.join(args.out, "mlp.npz")
    plot(history, curves)
    gpuad.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": args.epochs, "hidden": args.hidden}, ckpt)
    print(f"\ndevice {summary['device']}  |  training {summary['train_seconds']:.1f} s "
          f"({time.perf_counter() - wall:.1f} s in all)  |  "
          f"{summary['samples_per_second']:,.0f} samples/s  |  "
          f"final test accuracy {summary['accuracy']:.2%}")
    print(f"curves: {curves}\ncheckpoint: {ckpt}")
    return summary


if __name__ == "__main__":
    main()

"""Helpers shared by the test files (``from helpers import leaf``)."""
import gpuad


def leaf(values, device, dtype=None):
    """A tensor of ``values`` on ``device`` that requires grad: a leaf of the graph."""
    return gpuad.tensor(values, dtype=dtype, device=device, requires_grad=True)


def train_step(model, opt, loss_fn=None, scheduler=None):
    """``step(x, y)``: zero_grad, loss, backward, opt.step (and scheduler.step); returns
    the loss, detached: the step ``gpuad.compile`` tests compile."""
    loss_fn = loss_fn or gpuad.nn.functional.cross_entropy

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        return loss.detach()
    return step


def manual_sgd_step(model, lr=0.05):
    """``step(x, t)``: MSE loss, backward, and an SGD update written with in-place ops."""
    def step(x, t):
        model.zero_grad()
        loss = gpuad.nn.functional.mse_loss(model(x), t)
        loss.backward()
        with gpuad.no_grad():
            for p in model.parameters():
                p.sub_(lr * p.grad)
        return loss.detach()
    return step

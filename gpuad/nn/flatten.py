"""``Flatten``: merge dimensions ``start_dim..end_dim`` into one."""
from .module import Module


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` (by default all but the batch dim).

    >>> gpuad.nn.Flatten()(gpuad.zeros(32, 8, 8)).shape
    (32, 64)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

"""``LayerNorm``, composed from mean and variance ops (autograd derives its backward)."""
from ..factories import ones, zeros
from .module import Module
from .parameter import Parameter


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims to zero mean and unit
    (biased) variance, then scale by ``weight`` and shift by ``bias`` when affine.

    >>> gpuad.nn.LayerNorm(64)(gpuad.randn(32, 64)).shape
    (32, 64)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a positive int or a "
                             f"non-empty tuple of them, got {normalized_shape!r}")
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(shape, device=device, dtype=dtype))
            self.bias = Parameter(zeros(shape, device=device, dtype=dtype))

    def forward(self, x):
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape or x.ndim < k:
            raise ValueError(f"LayerNorm{self.normalized_shape} expects inputs ending in "
                             f"{self.normalized_shape}, got shape {tuple(x.shape)}")
        dims = tuple(range(x.ndim - k, x.ndim))
        centred = x - x.mean(dims, keepdim=True)
        y = centred / ((centred * centred).mean(dims, keepdim=True) + self.eps).sqrt()
        return y * self.weight + self.bias if self.elementwise_affine else y

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

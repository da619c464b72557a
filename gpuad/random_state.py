"""Seeding of every device's generator: ``gpuad.manual_seed(0)``."""
_seed = 0


def initial_seed():
    """The seed that a generator created from now on starts from."""
    return _seed


def manual_seed(seed):
    """Seed the random generators of all devices, like ``torch.manual_seed``."""
    global _seed
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _seed = seed
    from .backends import created_backends
    for b in created_backends():
        b.seed(seed)

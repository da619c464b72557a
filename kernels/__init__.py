"""gpuad's fused kernels: CUDA C sources (``*.cu``) and their Numba CPU twins (``*.py``).

Each family keeps its CUDA kernel and its twin side by side under one name; a twin
has the same semantics as the kernel and is what the CPU backend runs. Twins are serial
and release the GIL (``nogil``): the backend runs a large array's row blocks on its own
threads (``gpuad.backends.cpu_threads``), so a twin never starts Numba's threading layer.
"""

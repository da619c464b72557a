"""gpuad's package list, found on disk (a new subpackage of gpuad/ is never left out of the
wheel), with ``kernels/`` shipped as ``gpuad.kernels``; the rest is in pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gpuad", "gpuad.*"]) + ["gpuad.kernels"],
      package_dir={"gpuad.kernels": "kernels"})

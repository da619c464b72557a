"""The names the real CuPy offers (``tests/emulated/cupy_names.json``, written by
``derive_cupy_names.py`` from the CuPy wheel), and modules that offer no others."""
import json
import types
from pathlib import Path

NAMES = json.loads((Path(__file__).parent.parent / "cupy_names.json").read_text())
VERSION = NAMES["version"]


class NotEmulated(AttributeError):
    """CuPy has this name, but the emulation does not offer it (yet)."""


class Module(types.ModuleType):
    """A stand-in module offering only names the real one has; a real name that is not
    emulated raises ``NotEmulated``, any other the AttributeError CuPy would raise.
    ``lazy`` maps names the real module loads on first use to a function giving them."""

    def __init__(self, name, attrs, real=None, lazy=None):
        super().__init__(name)
        real = set(NAMES["modules"][name] if real is None else real)
        real |= set(NAMES["lazy"].get(name, ()))
        lazy = lazy or {}
        extra = sorted(k for k in [*attrs, *lazy] if k not in real and not k.startswith("__"))
        if extra:
            raise AssertionError(f"the stand-in for {name} offers names CuPy {VERSION} "
                                 f"lacks: {extra}")
        self.__dict__.update(attrs)
        self.__dict__["_real_names"] = real
        self.__dict__["_lazy"] = lazy

    def __getattr__(self, attr):
        lazy = self.__dict__.get("_lazy", {})
        if attr in lazy:
            return lazy[attr]()
        if attr in self.__dict__.get("_real_names", ()):
            raise NotEmulated(f"{self.__name__}.{attr} exists in CuPy {VERSION}, but "
                              "tests/emulated does not emulate it; add it there")
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self):
        return sorted(k for k in [*self.__dict__, *self.__dict__.get("_lazy", ())]
                      if not k.startswith("_"))


def check_class(dotted, cls, allowed=()):
    """Fail if the stand-in class ``cls`` offers a public name the real class lacks."""
    real = set(NAMES["classes"][dotted]) | set(allowed)
    extra = sorted(n for n in vars(cls) if not n.startswith("_") and n not in real)
    if extra:
        raise AssertionError(f"the stand-in for {dotted} offers names CuPy {VERSION} "
                             f"lacks: {extra}")

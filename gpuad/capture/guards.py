"""Guards: the Python state a recorded step can read, checked before each replay.

A replay repeats a step's array work without running its Python code, so what that code
read while it was recorded (a loss weight in a dict, a module attribute, a global) is
frozen into the program. ``collect`` walks what the step's code can name, statically:
the closure, defaults and globals of the step function and of the functions, classes
and custom ops it names (user code only: gpuad's own code records what it reads), the
items of small dicts, lists and tuples found there, every attribute of the modules the
step called or can name, and the attributes other objects hold under the names the code
uses (``cfg.weight``). Numbers, strings and other plain values are guarded by value;
tensors, arrays, modules and other objects by identity (a module attribute rebound to a
new tensor). ``Guards.changed()`` names the first one that no longer holds.

What the walk cannot see stays frozen: a value read through a function of an installed
package, from a file, from an object held under a name the code does not use, the items
of a container longer than ``MAX_ITEMS`` (its length is guarded), or anything past
``MAX_GUARDS`` (0.1 us each per replay; an MLP step has about 40).
"""
import functools
import os
import sys
import sysconfig
import types

from ..nn.module import Module
from ..tensor import Tensor

#: How deep the walk follows containers and attributes, how many items of one container
#: it guards one by one, and how many guards a step may have in all.
MAX_DEPTH, MAX_ITEMS, MAX_GUARDS = 4, 64, 10000
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_LIBRARY = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep}
                 | {os.path.abspath(p) + os.sep for k, p in sysconfig.get_paths().items()
                    if k in ("stdlib", "platstdlib", "purelib", "platlib")})


class Guards:
    """The checks of one program, by kind: ``(holder, key, expected, path)`` for an item
    held by identity (``same``) or by value (``equal``) in a dict, a list or an object's
    ``__dict__``; ``(cell, expected, path)`` for a closure cell; ``(container, length,
    path)``."""

    def __init__(self):
        self.same, self.equal, self.cells, self.lengths = [], [], [], []

    def __len__(self):
        return len(self.same) + len(self.equal) + len(self.cells) + len(self.lengths)

    def changed(self):
        """The path of the first guarded value that changed since recording, or None."""
        path = None
        try:
            for holder, key, want, path in self.same:
                if holder[key] is not want:
                    return path
            for holder, key, want, path in self.equal:
                got = holder[key]
                if got is not want and not _equal(got, want):
                    return path
            for cell, want, path in self.cells:
                got = cell.cell_contents
                if got is not want and not (isinstance(want, _PLAIN) and _equal(got, want)):
                    return path
            for holder, n, path in self.lengths:
                if len(holder) != n:
                    return path
        except (LookupError, ValueError):  # removed: a deleted key, an emptied cell
            return path
        return None


def _equal(got, want):
    return type(got) is type(want) and (got == want or got != got and want != want)


def collect(fn, modules):
    """The guards of a step ``fn`` that called ``modules``."""
    names = set()
    for _ in range(3):  # again while the walk finds code using more names
        walk = _Walk(names)
        walk.value(fn, getattr(fn, "__name__", "step"), 0)
        for m in modules:
            walk.value(m, type(m).__name__, 0)
        if walk.names == names:
            break
        names = walk.names
    return walk.guards


class _Walk:
    def __init__(self, names):
        self.guards = Guards()
        self.names = set(names)  # every name the walked code uses (attributes, globals)
        self.seen = set()    # ids of objects walked already
        self.keep = []       # what the ids name, alive while walking

    def item(self, holder, key, value, path):
        """Guard ``holder[key]``: by value for a plain value, else by identity."""
        if len(self.guards) < MAX_GUARDS:
            kind = self.guards.equal if isinstance(value, _PLAIN) else self.guards.same
            kind.append((holder, key, value, path))

    def length(self, container, path):
        if len(self.guards) < MAX_GUARDS:
            self.guards.lengths.append((container, len(container), path))

    def first_visit(self, obj):
        if id(obj) in self.seen:
            return False
        self.seen.add(id(obj))
        self.keep.append(obj)
        return True

    # --- code ------------------------------------------------------------------------
    def function(self, fn, path, depth):
        """A user function: its closure cells, defaults and the globals its code names."""
        if isinstance(fn, types.MethodType):
            self.value(fn.__self__, path, depth)
            fn = fn.__func__
        code = getattr(fn, "__code__", None)
        if code is None or _is_library(code.co_filename) or not self.first_visit(fn):
            return
        names = _names(code)
        self.names |= names
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # not bound yet
                continue
            if len(self.guards) < MAX_GUARDS:
                self.guards.cells.append((cell, value, name))
            self.value(value, name, depth + 1)
        for k, value in enumerate(fn.__defaults__ or ()):
            self.value(value, f"{path}'s default {k}", depth + 1)
        for name in sorted(names & fn.__globals__.keys()):
            value = fn.__globals__[name]
            self.item(fn.__globals__, name, value, f"global {name}")
            self.value(value, name, depth + 1)

    def cls(self, klass, path, depth):
        """A user class the code names: its functions, and the class attributes it uses."""
        if klass.__module__ in sys.builtin_module_names or _is_library(
                getattr(sys.modules.get(klass.__module__), "__file__", None)) \
                or not self.first_visit(klass):
            return
        for name, value in vars(klass).items():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                self.function(value, f"{path}.{name}", depth + 1)
        for name in sorted(self.names & vars(klass).keys()):
            value = vars(klass)[name]
            if not isinstance(value, types.FunctionType):
                self.item(vars(klass), name, value, f"{path}.{name}")

    # --- values ------------------------------------------------------------------------
    def value(self, v, path, depth):
        """Guard inside ``v`` (already guarded itself by its holder)."""
        if depth > MAX_DEPTH or isinstance(v, _PLAIN + (Tensor, types.ModuleType)):
            return
        if isinstance(v, (types.FunctionType, types.MethodType)):
            self.function(v, path, depth)
        elif isinstance(v, functools.partial):
            self.value(v.func, path, depth)
            self.container(v.args, f"{path}'s arguments", depth + 1)
            self.container(v.keywords, f"{path}'s keywords", depth + 1)
        elif isinstance(v, type):
            self.cls(v, path, depth)
        elif isinstance(v, (dict, list, tuple)):
            self.container(v, path, depth)
        elif isinstance(v, Module):
            self.module(v, path, depth)
        elif hasattr(v, "__dict__") and not _is_array(v) and self.first_visit(v):
            for name in sorted(self.names & vars(v).keys()):
                value = vars(v)[name]
                self.item(vars(v), name, value, f"{path}.{name}")
                self.value(value, f"{path}.{name}", depth + 1)

    def container(self, c, path, depth):
        if not self.first_visit(c):
            return
        if not isinstance(c, tuple):
            self.length(c, f"len({path})")
        if len(c) > MAX_ITEMS:
            return
        items = c.items() if isinstance(c, dict) else enumerate(c)
        for k, value in items:
            sub = f"{path}[{k!r}]"
            self.item(c, k, value, sub)
            self.value(value, sub, depth + 1)

    def module(self, m, path, depth):
        """Every attribute of a module, its parameters and sub-modules, and the code of
        its class (a user-written forward)."""
        if not self.first_visit(m):
            return
        for name, value in vars(m).items():
            if name == "_forward_hooks":  # hooks: tracing.state_version follows them
                continue
            sub = f"{path}.{name}"
            if name in ("_parameters", "_modules"):
                self.length(value, f"{path}'s {name[1:]}")
                for k, item in value.items():
                    self.item(value, k, item, f"{path}.{k}")
                    if isinstance(item, Module):
                        self.module(item, f"{path}.{k}", depth + 1)
                continue
            self.item(vars(m), name, value, sub)
            self.value(value, sub, depth + 1)
        self.cls(type(m), type(m).__name__, depth + 1)


def _names(code):
    """The global and attribute names ``code`` and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _is_library(filename):
    """Code of gpuad, the standard library or an installed package (not walked)."""
    return bool(filename) and os.path.abspath(filename).startswith(_LIBRARY)


def _is_array(v):
    t = type(v)
    return t.__name__ == "ndarray" and t.__module__.partition(".")[0] in ("numpy", "cupy")

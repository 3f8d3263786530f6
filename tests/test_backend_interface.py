"""Every backend module provides the whole backend interface (``nstaudio.kernels.interface.Backend``)."""

import ast
import inspect
from pathlib import Path

import pytest

from nstaudio.kernels import cpu, interface, numpy_backend

MEMBERS = interface.members()
CUDA_SOURCE = Path(interface.__file__).with_name("cuda.py")


def _parameters(function):
    """Parameter names (and whether each has a default) of a function, a numba dispatcher or a protocol method."""
    signature = inspect.signature(getattr(function, "py_func", function))
    return [(p.name, p.default is not p.empty) for p in signature.parameters.values() if p.name != "self"]


def _compatible(wanted, got):
    """``got`` takes the protocol's parameters, in order, and any more only with defaults."""
    return [name for name, _ in got[:len(wanted)]] == [name for name, _ in wanted] and all(
        default for _, default in got[len(wanted):])


def test_the_interface_lists_the_shared_functions():
    assert {"conv1d", "griffin_lim_project", "heap_integrate", "mel_fista_steps", "name", "xp"} <= set(MEMBERS)
    for name in MEMBERS:
        member = getattr(interface.Backend, name, None)
        assert member is None or (member.__doc__ or "").strip(), f"Backend.{name} has no docstring"


@pytest.mark.parametrize("backend", [numpy_backend, cpu], ids=lambda b: b.name)
def test_backend_module_provides_every_member(backend):
    assert [name for name in MEMBERS if not hasattr(backend, name)] == []
    assert isinstance(backend, interface.Backend)
    for name in MEMBERS:
        wanted = getattr(interface.Backend, name, None)
        if callable(wanted):
            assert _compatible(_parameters(wanted), _parameters(getattr(backend, name))), name


def test_cuda_module_provides_every_member():
    """Read from its source: importing it needs CuPy."""
    tree = ast.parse(CUDA_SOURCE.read_text())
    defined, functions = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
            if isinstance(node, ast.FunctionDef):
                args = node.args
                positional = args.posonlyargs + args.args
                defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
                functions[node.name] = list(zip([a.arg for a in positional], defaults)) + [
                    (a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                defined.update(e.id for e in elements if isinstance(e, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            defined.update(alias.asname or alias.name for alias in node.names)
    assert [name for name in MEMBERS if name not in defined] == []
    for name, got in functions.items():
        wanted = getattr(interface.Backend, name, None)
        if callable(wanted):
            assert _compatible(_parameters(wanted), got), name


def test_kernels_are_a_leaf():
    """kernels/ imports of nstaudio only errors, limits and validation (anything above dispatches down to it)."""
    allowed = {"nstaudio.errors", "nstaudio.limits", "nstaudio.validation"}
    found = []
    for path in sorted(CUDA_SOURCE.parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ([] if node.level == 1 else ["nstaudio.?"])
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "nstaudio" and n not in allowed]
    assert found == []

"""A mypyc build of liqmon's hot modules in a scratch directory, for the benchmarks only.

    .venv-mypyc/bin/python benchmarks/mypyc_build.py [--out /tmp/liqmon-mypyc] [--modules ...]
    PYTHONPATH=/tmp/liqmon-mypyc .venv-mypyc/bin/python benchmarks/ingest.py --repeat 3

Measurement, not packaging: the project's build and install are untouched. The venv needs
the project's dependencies, mypy (which ships mypyc) and setuptools; the machine needs gcc
and the Python headers (``python3.11-config --includes``).

What it does: copies ``monitor/`` into ``--out``, compiles ``--modules`` there with mypyc
(one group, so that calls between them are native) and builds them in place, next to
their ``.py`` (an extension module wins over the source of the same name). It writes a
``sitecustomize.py`` into ``--out`` that imports ``monitor`` at start-up: the benchmarks
put the checkout first on ``sys.path`` themselves, and ``python -m monitor`` (the e2e
daemon child) puts its working directory there, either of which would otherwise shadow
the build. Once the package is imported, its submodules come from its own ``__path__``.
So every process started with ``PYTHONPATH=<out>`` runs the compiled modules, children
included; the build then checks, from the checkout's directory, that they are the ones
imported (``--no-verify`` skips it).

What mypyc cannot take as it is, and what the copy does about it:

* msgspec Structs with class keywords (``gc=False``, ``kw_only=True``): mypyc builds a
  class with a metaclass by calling the metaclass with the name, bases and namespace only
  (mypyc/irbuild/classdef.py), so the keywords are lost: ``kw_only`` classes then fail at
  import (OKX: a required field after an optional one) and ``gc=False`` ones are silently
  tracked by the GC. The copy moves a ``*_fast`` module's Structs and decoders into a
  ``*_wire`` module beside it, left interpreted, and imports them from there
  (``--keep-structs`` builds the copy unchanged, to see both failures; name the
  ``*_fast`` modules before ``fast.py`` in ``--modules`` then, because in the other order
  mypy cannot type their ``_to_float = fast.to_float`` aliases, "Cannot determine type",
  an artefact of the import cycle through ``monitor.venues.dialect``).
* The venue sessions subclass the ``*FastPaths`` classes, which mypyc makes native: the
  copy marks those ``allow_interpreted_subclasses`` (:func:`allow_subclasses`).
* A module mypyc refuses (an error before the C step) is named, left out of the group
  and the rest retried; that helps only when no compiled module imports it (mypy still
  checks what they import).

``--final-constants`` also declares the compiled modules' constants ``Final``
(:func:`final_constants`): the one source change here that makes the compiled code faster
rather than possible.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TypeGuard

ROOT = Path(__file__).resolve().parents[1]
HOT_MODULES = (
    "monitor/venues/fast.py", "monitor/venues/binance_fast.py", "monitor/venues/bybit_fast.py",
    "monitor/venues/okx_fast.py", "monitor/ingest.py", "monitor/store/dedupe.py",
    "monitor/store/memory_buckets.py", "monitor/store/memory.py", "monitor/metrics/hot.py",
    "monitor/detector/windows.py",
)
# Pins the package to the build before a script or ``-m`` puts the checkout on sys.path.
SITECUSTOMIZE = "import monitor  # noqa: F401  (benchmarks/mypyc_build.py)\n"
SETUP = """\
import sys
from mypyc.build import mypycify
from setuptools import setup

setup(name="liqmon-mypyc", script_args=["build_ext", "--inplace"],
      ext_modules=mypycify(sys.argv[1:], opt_level="3", target_dir="mypyc-c"))
"""
MYPYC_ERROR = re.compile(r"^(monitor/\S+\.py):\d+: error: (.*)$", re.MULTILINE)


def _is_struct(node: ast.stmt) -> TypeGuard[ast.ClassDef]:
    return isinstance(node, ast.ClassDef) and any(
        ast.unparse(base) == "msgspec.Struct" for base in node.bases)


def split_structs(out: Path, module: str) -> str | None:
    """Moves a module's Structs (and what follows them up to the next class or function:
    their decoders) into ``<module>_wire.py``; returns the wire module's name, or None."""
    path = out / module
    source = path.read_text()
    body = ast.parse(source).body
    structs = [i for i, node in enumerate(body) if _is_struct(node)]
    if not structs:
        return None
    first, end = structs[0], structs[-1] + 1
    while end < len(body) and not isinstance(
            body[end], ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        end += 1
    region = body[first:end]
    lines = source.splitlines(keepends=True)
    start = region[0].lineno - 1  # the Structs have no decorators
    header = "".join(lines[:start])
    if not header.startswith('"""'):
        raise SystemExit(f"{module}: expected a module docstring")
    # Each statement takes the comment lines above it along. The decoders move with the
    # Structs; aliases of other modules' names stay, for the reason below.
    moved: list[str] = []
    kept: list[str] = []
    names: list[str] = []
    for node in region:
        stop = node.end_lineno or node.lineno
        text = "".join(lines[start:stop])
        start = stop
        if _is_struct(node):
            names.append(node.name)
        elif isinstance(node, ast.Assign) and "Decoder(" in ast.unparse(node.value):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        else:
            kept.append(text)
            continue
        moved.append(text)
    wire = f"{path.stem}_wire"
    package = ".".join(Path(module).parts[:-1])
    # The wire module takes the header's imports only: the header's aliases of other
    # modules' names (binance_fast's fast.DECODE_ERRORS) copied into it are names mypy
    # cannot type ("Cannot determine type"), the wire and fast modules importing each
    # other through dialect.
    imports = "".join(ast.get_source_segment(source, node) + "\n" for node in body[:first]
                      if isinstance(node, ast.Import | ast.ImportFrom))
    path.with_name(f"{wire}.py").write_text(
        f'"""{path.stem}\'s Structs, interpreted (benchmarks/mypyc_build.py)."""\n\n'
        + imports + "\n\n" + "".join(moved))
    wired = f"from {package}.{wire} import (  # noqa: F401\n    {', '.join(names)})\n"
    path.write_text(header + wired + "".join(kept) + "".join(lines[start:]))
    return wire


def subclassed(out: Path, modules: list[str]) -> dict[str, set[str]]:
    """The classes of ``modules`` that a module left interpreted subclasses, by module (the
    venue sessions subclass the ``*FastPaths`` classes)."""
    defined = {node.name: module for module in modules
               for node in ast.parse((out / module).read_text()).body
               if isinstance(node, ast.ClassDef)}
    found: dict[str, set[str]] = {}
    for path in (out / "monitor").rglob("*.py"):
        if str(path.relative_to(out)) in modules:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    name = ast.unparse(base).rsplit(".", 1)[-1]
                    if name in defined:
                        found.setdefault(defined[name], set()).add(name)
    return found


def allow_subclasses(out: Path, module: str, classes: set[str]) -> None:
    """Lets interpreted classes subclass ``classes``: a native class refuses them when they
    are instantiated ("interpreted classes cannot inherit from compiled"). The decorator is
    read at compile time; at run time the compiled class is built without calling it, so
    its import stays under TYPE_CHECKING (the cryptofeed venv has no mypy_extensions)."""
    path = out / module
    source = path.read_text()
    for name in classes:
        head = f"\nclass {name}("
        if source.count(head) != 1:
            raise SystemExit(f"{module}: class {name} not found once")
        source = source.replace(
            head, f"\n@mypyc_attr(allow_interpreted_subclasses=True){head}")
    future = "from __future__ import annotations\n"
    source = source.replace(future, future + "from typing import TYPE_CHECKING\n"
                            "if TYPE_CHECKING:\n    from mypy_extensions import mypyc_attr\n", 1)
    path.write_text(source)


def final_constants(out: Path, module: str) -> list[str]:
    """Declares a module's constants ``Final`` (``--final-constants``): mypyc looks an
    undeclared module global up in the module's dict at every use (``_INF``, ``_LONG``,
    ``_to_float``: about ten lookups per Bybit row), a Final one it keeps in a C static.
    Constants are the top-level names bound once, to anything but a type
    alias, a TypeVar or a container display."""
    path = out / module
    source = path.read_text()
    tree = ast.parse(source)
    bound: dict[str, int] = {}
    for node in ast.walk(tree):
        for target in [*getattr(node, "targets", []), getattr(node, "target", None)]:
            if isinstance(target, ast.Name):
                bound[target.id] = bound.get(target.id, 0) + 1
        if isinstance(node, ast.Global):
            for name in node.names:
                bound[name] = 2
    lines = source.splitlines(keepends=True)
    done: list[str] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        alias = isinstance(node.value, ast.Subscript) or (
            isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.BitOr)) or (
            ast.unparse(node.value).startswith(("TypeVar(", "typing.TypeVar(")))
        # A Final tuple read by a function called at import (metrics/hot.py's LAG_LE)
        # raised 'value for final name "SIZE_BUCKETS_USD" was not set': containers stay.
        alias = alias or isinstance(node.value, ast.Tuple | ast.List | ast.Dict | ast.Set)
        if alias or bound[name] != 1:
            continue
        line = lines[node.lineno - 1]
        if not line.startswith(f"{name} = "):
            continue
        lines[node.lineno - 1] = line.replace(f"{name} = ", f"{name}: Final = ", 1)
        done.append(name)
    if done:
        future = "from __future__ import annotations\n"
        text = "".join(lines).replace(future, future + "from typing import Final\n", 1)
        path.write_text(text)
    return done


def build(out: Path, modules: list[str], keep_structs: bool,
          final: bool = False) -> list[str]:
    """Copies the package into ``out`` and builds ``modules``; returns those built."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "monitor", out / "monitor",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    if not keep_structs:
        for module in modules:
            wire = split_structs(out, module)
            if wire:
                print(f"{module}: Structs moved to {wire}.py (interpreted)")
    if final:
        for module in modules:
            names = final_constants(out, module)
            if names:
                print(f"{module}: Final {', '.join(names)}")
    for module, classes in sorted(subclassed(out, modules).items()):
        if keep_structs:
            break
        allow_subclasses(out, module, classes)
        print(f"{module}: {', '.join(sorted(classes))} may be subclassed by interpreted code")
    (out / "setup_mypyc.py").write_text(SETUP)
    left = list(modules)
    while left:
        run = subprocess.run([sys.executable, "setup_mypyc.py", *left], cwd=out,
                             capture_output=True, text=True)
        if run.returncode == 0:
            break
        refused = {m: e for m, e in MYPYC_ERROR.findall(run.stdout + run.stderr)}
        if not refused or not refused.keys() & set(left):
            sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
            raise SystemExit("mypyc_build: the build failed (above)")
        for module, error in refused.items():
            print(f"{module}: not compiled: {error}")
        left = [m for m in left if m not in refused]
    (out / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return left


def verify(out: Path, modules: list[str]) -> None:
    """Imports every built module in a fresh process from the checkout's directory, as the
    benchmarks run, and fails unless each one is the extension module."""
    names = [m.removesuffix(".py").replace("/", ".") for m in modules]
    code = ("import importlib, sys\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "import monitor.venues.binance, monitor.venues.bybit, monitor.venues.okx\n"
            f"for name in {names!r}:\n"
            "    path = importlib.import_module(name).__file__\n"
            "    assert path.endswith('.so'), (name, path)\n"
            "    print('compiled:', path)\n")
    env = os.environ | {"PYTHONPATH": str(out)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/liqmon-mypyc"))
    parser.add_argument("--modules", nargs="+", default=list(HOT_MODULES),
                        help="paths under the checkout, e.g. monitor/ingest.py")
    parser.add_argument("--keep-structs", action="store_true",
                        help="build the copy as it is: Structs in place, no subclass "
                        "marks (to see the failures)")
    parser.add_argument("--final-constants", action="store_true",
                        help="declare the compiled modules' constants Final (see final_constants)")
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args()
    out = args.out.resolve()
    built = build(out, args.modules, args.keep_structs, args.final_constants)
    if not args.no_verify:
        verify(out, built)
    print(f"built {len(built)} of {len(args.modules)} modules; run with PYTHONPATH={out}")


if __name__ == "__main__":
    main()

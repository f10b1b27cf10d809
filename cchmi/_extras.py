"""Optional dependencies, checked where they are used: one ImportError text naming the extra to
install, and the hint for a source checkout whose compiled module was never built."""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

_NAMES = {"torch": "PyTorch", "matplotlib": "matplotlib"}


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import and return `module`; when it cannot be imported, ImportError
    "<what> needs <module>: pip install 'cchmi[<extra>]'" (with the import's own error when the
    module is there but fails to import)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = _NAMES.get(module, module)
        if exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]:
            raise ImportError(f"{what} needs {name}: pip install 'cchmi[{extra}]'", name=module) from exc
        raise ImportError(f"{what} needs {name}, which failed to import ({exc}); reinstall it with "
                          f"pip install 'cchmi[{extra}]'", name=module) from exc


def source_checkout_hint() -> str:
    """Why cchmi._cpu may be missing, when cchmi is imported from a source checkout (a folder
    holding pyproject.toml) with no compiled module beside it: the checkout shadows any installed
    cchmi, and `pip install -e .` builds the module in place. Empty otherwise. For the message
    of a failed import of cchmi._cpu (an editable install keeps its module in the build folder)."""
    package = Path(__file__).resolve().parent
    built = any((package / f"_cpu{suffix}").is_file() for suffix in EXTENSION_SUFFIXES)
    if built or not (package.parent / "pyproject.toml").is_file():
        return ""
    hint = f"cchmi is imported from the source checkout {package.parent}, which has no compiled module"
    installed = _installed_package()
    if installed is not None and installed != package:
        hint += f" and shadows the cchmi installed in {installed.parent}"
    return hint + "; run `pip install -e .` there to build the module in place"


def _installed_package() -> Path | None:
    """The folder holding the installed distribution's cchmi package, if there is one (an
    editable install has none: its files are the checkout's)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("cchmi")
    except metadata.PackageNotFoundError:
        return None
    package = Path(dist.locate_file("cchmi")).resolve()
    return package if (package / "__init__.py").is_file() else None

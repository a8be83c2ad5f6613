"""Every module says what it exports, and says it truly (STYLE rule 19, as httpx's own test does).

``__all__`` must name only what the module has, and every public class or function the module itself defines:
a public name left out is an API nobody decided on, a name that is not there breaks ``from x import *``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("contracts", "connectors", "quality", "exchange", "waterhub")


def _modules() -> list[str]:
    names: list[str] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names.extend(info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."))
    return sorted(names)


def _defined_here(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("module_name", _modules())
def test_all_names_exactly_what_the_module_offers(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert len(exported) == len(set(exported)), f"{module_name}.__all__ repeats a name"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ names what it does not have"
    assert _defined_here(module) <= set(exported), f"{module_name} defines public names its __all__ leaves out"

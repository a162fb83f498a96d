"""The public API is exactly __all__, sorted, and every name in it is documented."""

from __future__ import annotations

import cw_glbatch


def isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest, as ruff sorts __all__."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted():
    """__all__ is kept in sorted order."""
    assert cw_glbatch.__all__ == sorted(cw_glbatch.__all__, key=isort_key)


def test_all_lists_every_public_name():
    """Every public attribute of the package is in __all__, and nothing else is."""
    public = {
        name
        for name in dir(cw_glbatch)
        if not name.startswith("_") and not isinstance(getattr(cw_glbatch, name), type(cw_glbatch))
    }
    assert public == set(cw_glbatch.__all__) - {"__version__"}


def test_public_objects_have_docstrings():
    """Every exported class and function has a docstring."""
    for name in cw_glbatch.__all__:
        obj = getattr(cw_glbatch, name)
        if callable(obj):
            assert obj.__doc__, name


def test_version_comes_from_metadata():
    """__version__ is the installed distribution's version."""
    from importlib.metadata import version

    assert cw_glbatch.__version__ == version("cw-glbatch")


def test_api_reference_names_every_public_object():
    """docs/api.md mentions every name in __all__ of cw_glbatch and cw_glbatch.testing."""
    import re
    from pathlib import Path

    import cw_glbatch.testing

    text = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    names = [*cw_glbatch.__all__, *cw_glbatch.testing.__all__]
    missing = [n for n in names if n != "__version__" and not re.search(rf"\b{n}\b", text)]
    assert missing == []

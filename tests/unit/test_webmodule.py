"""WebModule.owns: which module's envelope and metrics label a request path gets."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from writegate.core.webmodule import WebModule


def _module(prefixes: tuple[str, ...], *, any_case: bool) -> WebModule:
    return WebModule(
        "m",
        APIRouter(),
        prefixes,
        lambda request, info: PlainTextResponse(info.message),
        any_case=any_case,
    )


def test_any_case_module_given_mixed_case_prefixes_owns_every_casing() -> None:
    """Regression: `owns` lower-cased the path but not the prefixes, so a module declared
    with the vendor's own casing (/CodeLock/) owned none of its paths."""
    module = _module(("/CodeLock/",), any_case=True)
    for path in ("/CodeLock/Axema/UserSync", "/codelock/axema/usersync", "/CODELOCK/X"):
        assert module.owns(path), path
    assert not module.owns("/Code/Lock")


def test_exact_case_module_owns_only_its_prefixes_as_written() -> None:
    """Without any_case the prefix is matched as written."""
    module = _module(("/model/",), any_case=False)
    assert module.owns("/model/package/putDb")
    assert not module.owns("/Model/package/putDb")

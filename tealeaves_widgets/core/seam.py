"""The one seam between results and the layers above core.

A `Run`, `RunSet` or `Comparison` offers conveniences whose code lives higher
up: its view in a notebook (`widgets`), static figures and the markdown report
(`present`), its file (`io`). Core never imports those layers. Each of them
registers its implementations here when it is imported (`provide`), and the
package's `__init__` names, per operation, the module to import on first use
(`PROVIDERS`). A result asks with `call(operation, self, ...)`.

So the import graph stays one-way (checked by the import contracts), and a
newcomer finds every registration with `grep "seam.provide"`.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import MissingExtensionError

F = TypeVar("F", bound=Callable[..., Any])

PROVIDERS: dict[str, str] = {}
"""Operation -> module that registers its implementations when imported (filled
by `tealeaves_widgets/__init__.py`)."""

_IMPLEMENTATIONS: dict[tuple[str, type], Callable[..., Any]] = {}


def provide(operation: str, result_type: type) -> Callable[[F], F]:
    """Register the decorated function as `operation` of `result_type` (and
    its subclasses); it is called as `fn(result, *args, **kwargs)`."""

    def register(fn: F) -> F:
        _IMPLEMENTATIONS[(operation, result_type)] = fn
        return fn

    return register


def _find(operation: str, result_type: type) -> Callable[..., Any] | None:
    for cls in result_type.__mro__:
        fn = _IMPLEMENTATIONS.get((operation, cls))
        if fn is not None:
            return fn
    return None


def implementation(operation: str, result_type: type) -> Callable[..., Any]:
    """The function registered for `operation` of `result_type`, importing its
    provider module first if needed."""
    fn = _find(operation, result_type)
    if fn is None and operation in PROVIDERS:
        module = PROVIDERS[operation]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingExtensionError(
                f"{result_type.__name__}.{operation} needs {module}, which cannot be imported "
                f"({error}). Install the missing package (pip install tealeaves-widgets "
                "brings every dependency)."
            ) from error
        fn = _find(operation, result_type)
    if fn is None:
        raise MissingExtensionError(
            f"No {operation!r} is registered for {result_type.__name__}. Import the module "
            f"that provides it ({PROVIDERS.get(operation, 'unknown')}) first."
        )
    return fn


_ORIGINS: dict[int, tuple[weakref.ref, weakref.ref]] = {}


def remember_model(result: Any, model: Any) -> None:
    """Note that `model` captured `result`, weakly (neither is kept alive), so
    that its view, displayed in the same kernel, can ask the model for more
    (a clicked token's rows). Core never imports models: it keeps an object."""
    key = id(result)
    _ORIGINS[key] = (
        weakref.ref(result, lambda _gone, key=key: _ORIGINS.pop(key, None)),
        weakref.ref(model),
    )


def model_of(result: Any) -> Any | None:
    """The model that captured `result` while both are alive, else None."""
    entry = _ORIGINS.get(id(result))
    if entry is None or entry[0]() is not result:
        return None
    return entry[1]()


def call(operation: str, result: Any, *args: Any, **kwargs: Any) -> Any:
    """`operation` of `result`, with these arguments."""
    return implementation(operation, type(result))(result, *args, **kwargs)


def in_kernel() -> bool:
    """True inside a Jupyter kernel (not a terminal IPython or plain Python),
    the one place a widget can be shown."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython.core.getipython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def display_bundle(result: Any, include: Any = None, exclude: Any = None) -> dict | tuple:
    """The `_repr_mimebundle_` of a result: in a Jupyter kernel, that of its
    view (operation "view"), with "text/plain" set to `repr(result)` for
    plain-text front ends; elsewhere, or where the view cannot be imported,
    the text alone. The widgets load on display only."""
    plain = {"text/plain": repr(result)}
    if not in_kernel():
        return plain
    try:
        view = call("view", result)
    except (ImportError, MissingExtensionError):  # widgets not installed: text is all we have
        return plain
    bundle = view._repr_mimebundle_(include=include, exclude=exclude)
    if isinstance(bundle, tuple):  # (data, metadata), as anywidget returns it
        return ({**bundle[0], **plain}, bundle[1])
    return {**bundle, **plain}

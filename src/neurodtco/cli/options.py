"""Option groups: a frozen dataclass of options that a command takes as one parameter, its flags declared once.

``@with_options`` replaces each parameter of a command annotated with an ``OptionGroup`` (``circuit:
CircuitOptions = CircuitOptions()``) by the group's flags, with the parameter's default instance giving the
flags' defaults, and hands the command one group object built from the flags; a value the group refuses
becomes a one-line error before the command loads anything.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, ClassVar

import typer

from .common import user_errors


class OptionGroup:
    """Base of a frozen dataclass whose fields are command-line options, listed in ``OPTIONS``."""

    #: (field, type, flag, help) of each option, in help order.
    OPTIONS: ClassVar[tuple[tuple[str, Any, str, str], ...]] = ()

    def parameters(self) -> list[inspect.Parameter]:
        """The typer parameters of the options, their defaults taken from this instance."""
        return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(self, name),
                                  annotation=Annotated[kind, typer.Option(flag, help=text)])
                for name, kind, flag, text in self.OPTIONS]


def with_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the flags of each of its ``OptionGroup`` parameters, and the groups built from them."""
    signature = inspect.signature(command, eval_str=True)
    groups: dict[str, OptionGroup] = {}
    params = []
    for p in signature.parameters.values():
        if isinstance(p.annotation, type) and issubclass(p.annotation, OptionGroup):
            if type(p.default) is not p.annotation:  # the default instance gives the flags' defaults
                raise TypeError(f"{command.__name__}: parameter {p.name!r} needs a {p.annotation.__name__}() default")
            groups[p.name] = p.default
            params.extend(p.default.parameters())
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        with user_errors():
            built = {name: type(group)(**{field: kwargs.pop(field) for field, *_ in group.OPTIONS})
                     for name, group in groups.items()}
        return command(**built, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must read the new signature, not the command's
    return wrapper

"""The command line's declarations and their two readers.

Commands are plain functions whose parameters are annotated with `Option` / `Argument` (type,
flags, help, panel). Running a command parses them with argparse (the standard library: a few
milliseconds). Help, and any command line argparse refuses, go to Typer, built from the same
declarations: its panelled help and its usage messages stay what users see, while a plain run
does not pay for Typer, click, rich and pydantic (about 0.3 s of imports and per-option set-up,
more than the rest of a small load). Nothing here imports Typer until help or an error needs it.
"""

from __future__ import annotations

import argparse
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import NoneType, UnionType
from typing import Any


@dataclass(frozen=True)
class Option:
    """An option: `flags` as Typer writes them ("--db", "--incremental/--full", "--quiet", "-q")."""

    flags: tuple[str, ...]
    help: str
    metavar: str | None = None
    panel: str | None = None
    hidden: bool = False
    min: float | None = None
    formats: tuple[str, ...] | None = None
    show_default: bool = True


def option(*flags: str, help: str, metavar: str | None = None, panel: str | None = None, hidden: bool = False,  # noqa: A002
           min: float | None = None, formats: Sequence[str] | None = None, show_default: bool = True) -> Option:  # noqa: A002
    return Option(flags, help, metavar, panel, hidden, min, tuple(formats) if formats else None, show_default)


@dataclass(frozen=True)
class Argument:
    help: str
    metavar: str
    show_default: bool = True


@dataclass(frozen=True)
class Param:
    """One parameter of a command function, read from its annotation."""

    name: str
    declaration: Option | Argument
    annotation: Any  # the type without its declaration, as Typer is given it
    kind: type  # the value type (of each item when `many`)
    many: bool  # a list: a repeatable option, or an argument taking several values
    default: Any  # inspect.Parameter.empty when required


@dataclass
class Command:
    function: Callable[..., Any]
    short_help: str | None = None

    def params(self) -> list[Param]:
        hints = typing.get_type_hints(self.function, include_extras=True)
        return [_param(name, hints[name], parameter.default)
                for name, parameter in inspect.signature(self.function).parameters.items()]


@dataclass
class Group:
    """Commands and sub-groups under one name; the root one carries the program's name and version."""

    help: str
    name: str = ""
    version: str | None = None
    entries: dict[str, Command | Group] = field(default_factory=dict)

    def command(self, name: str | None = None, short_help: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.entries[name or function.__name__.replace("_", "-")] = Command(function, short_help)
            return function

        return register

    def add_group(self, group: Group, name: str) -> None:
        self.entries[name] = group


def _param(name: str, hint: Any, default: Any) -> Param:
    annotation, declaration = typing.get_args(hint)[:2]
    kind = annotation
    if isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not NoneType)
    many = typing.get_origin(kind) is list
    if many:
        kind = typing.get_args(kind)[0]
    return Param(name, declaration, annotation, kind, many, default)


# -- running: argparse ---------------------------------------------------------------------------
class Refused(Exception):
    """argparse could not read the command line: Typer reads it again and says why (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise Refused(message)


def _converter(param: Param) -> Callable[[str], Any]:
    declaration, kind = param.declaration, param.kind
    if kind is datetime:
        formats = (declaration.formats if isinstance(declaration, Option) else None) or ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")

        def read_datetime(text: str) -> datetime:
            for form in formats:
                try:
                    return datetime.strptime(text, form)
                except ValueError:
                    pass
            raise ValueError(text)

        return read_datetime
    low = declaration.min if isinstance(declaration, Option) else None

    def read(text: str) -> Any:
        value = kind(text)
        if low is not None and value < low:
            raise ValueError(text)
        return value

    return read


def _add(parser: argparse.ArgumentParser, param: Param) -> None:
    declaration, required = param.declaration, param.default is inspect.Parameter.empty
    if isinstance(declaration, Argument):
        nargs = ("+" if required else "*") if param.many else (None if required else "?")
        parser.add_argument(param.name, nargs=nargs, type=_converter(param),
                            **({} if required else {"default": param.default}))
        return
    if param.kind is bool and not param.many:
        on, _, off = declaration.flags[0].partition("/")
        parser.add_argument(on, *declaration.flags[1:], dest=param.name, action="store_const", const=True, default=param.default)
        if off:
            parser.add_argument(off, dest=param.name, action="store_const", const=False)
        return
    parser.add_argument(*declaration.flags, dest=param.name, type=_converter(param), required=required,
                        action="append" if param.many else "store", **({} if required else {"default": param.default}))


def parsed(command: Command, args: Sequence[str]) -> dict[str, Any]:
    """The command function's keyword arguments read from `args`; Refused when argparse cannot."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    params = command.params()
    for param in params:
        _add(parser, param)
    try:
        values = vars(parser.parse_intermixed_args(list(args)))
    except (TypeError, ValueError) as problem:  # argparse refuses some combinations for intermixed parsing
        raise Refused(str(problem)) from None
    for param in params:  # an optional list of arguments absent is its default (argparse: [])
        if param.many and isinstance(param.declaration, Argument) and values[param.name] == []:
            values[param.name] = param.default
    return values


def resolve(root: Group, args: Sequence[str]) -> tuple[Command, list[str]] | None:
    """The command `args` name and the arguments after its name; None for help, --version, or a name
    that is no command (Typer answers those)."""
    entry: Command | Group = root
    rest = list(args)
    while isinstance(entry, Group):
        if not rest or rest[0] not in entry.entries:
            return None
        entry, rest = entry.entries[rest[0]], rest[1:]
    if "--help" in rest:
        return None
    return entry, rest


Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def run(root: Group, args: Sequence[str], wrap: Wrap) -> None:
    """Run the command `args` names, parsed by argparse, as `wrap(function)(**options)`; help and
    refused command lines by Typer."""
    found = resolve(root, args)
    if found is not None:
        command, rest = found
        try:
            kwargs = parsed(command, rest)
        except Refused:
            pass
        else:
            wrap(command.function)(**kwargs)
            return
    typer_app(root, wrap)(args=list(args), prog_name=root.name)


# -- help and refused command lines: Typer ---------------------------------------------------------
def typer_app(root: Group, wrap: Wrap):
    """A Typer app of the same commands: the one place help is rendered and usage errors are worded."""
    import typer

    def version(value: bool) -> None:
        if value:
            typer.echo(f"{root.name} {root.version}")
            raise typer.Exit()

    def options(version: bool = False) -> None:
        pass

    # Set as objects: this module's annotations are strings, and `typer` is no global here.
    options.__annotations__ = {"version": typing.Annotated[bool, typer.Option(
        "--version", metavar="", callback=version, is_eager=True, help="Print the version and exit.")], "return": None}

    app = _typer_group(root, wrap, name=root.name, rich_markup_mode="markdown")
    app.callback()(options)
    return app


def _typer_group(group: Group, wrap: Wrap, **settings: Any):
    import typer

    app = typer.Typer(help=group.help, no_args_is_help=True, add_completion=False, **settings)
    for name, entry in group.entries.items():
        if isinstance(entry, Group):
            app.add_typer(_typer_group(entry, wrap), name=name)
        else:
            app.command(name, short_help=entry.short_help)(_typer_command(entry, wrap))
    return app


def _typer_command(command: Command, wrap: Wrap) -> Callable[..., Any]:
    function = wrap(command.function)

    def typer_function(**kwargs: Any) -> Any:
        return function(**kwargs)

    parameters = []
    for param in command.params():
        annotation = typing.Annotated[param.annotation, _typer_declaration(param.declaration)]  # type: ignore[name-defined]
        parameters.append(inspect.Parameter(param.name, inspect.Parameter.KEYWORD_ONLY, default=param.default, annotation=annotation))
    typer_function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    typer_function.__annotations__ = {p.name: p.annotation for p in parameters}
    typer_function.__doc__ = command.function.__doc__
    typer_function.__name__ = command.function.__name__
    return typer_function


def _typer_declaration(declaration: Option | Argument):
    import typer

    if isinstance(declaration, Argument):
        return typer.Argument(metavar=declaration.metavar, help=declaration.help, show_default=declaration.show_default)
    extra: dict[str, Any] = {"min": declaration.min} if declaration.min is not None else {}
    if declaration.formats:
        extra["formats"] = list(declaration.formats)
    return typer.Option(*declaration.flags, metavar=declaration.metavar, rich_help_panel=declaration.panel, hidden=declaration.hidden,
                        show_default=declaration.show_default, help=declaration.help, **extra)


__all__ = ["Argument", "Command", "Group", "Option", "Refused", "option", "parsed", "resolve", "run", "typer_app"]

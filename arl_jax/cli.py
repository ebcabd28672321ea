"""Command lines generated from frozen config dataclasses.

Every field of a config becomes one flag with the same name (`SearchConfig.pop` is
`--pop`; underscores become dashes), so a setting has one name everywhere: in code, on
the command line and in the saved `config.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def field(default: Any, help: str) -> Any:  # noqa: A002 - argparse's word
    """A config field with its flag's help text."""
    return dataclasses.field(default=default, metadata={"help": help})


def flag_name(field_name: str) -> str:
    """`train_size` -> `--train-size`."""
    return "--" + field_name.replace("_", "-")


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per field of the dataclass `cls`.

    The field's `metadata["help"]` is the flag's help text; booleans get
    `--flag/--no-flag`; defaults are shown in `--help`.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        default = f.default
        helptext = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                flag_name(f.name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"{helptext} (default: {default})",
            )
            continue
        if kind == tuple[str, ...]:
            parser.add_argument(
                flag_name(f.name),
                nargs="+",
                type=str,
                default=default,
                dest=f.name,
                help=f"{helptext} (default: {' '.join(default)})",
                metavar=f.name.upper(),
            )
            continue
        if kind not in (int, float, str):
            raise TypeError(f"unsupported config field type {kind} for {f.name}")
        parser.add_argument(
            flag_name(f.name),
            type=kind,
            default=default,
            dest=f.name,
            help=f"{helptext} (default: {default!r})",
            metavar=f.name.upper(),
        )


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build the dataclass `cls` from parsed arguments."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def parse_config(
    cls: type[T], argv: Sequence[str] | None = None, description: str = ""
) -> tuple[T, argparse.ArgumentParser]:
    """Parse `argv` into a `cls`; a `ValueError` from the config's `validate()`
    becomes an argparse error (exit code 2) that names the flag."""
    # No ArgumentDefaultsHelpFormatter: add_dataclass_args already writes each
    # default into the help text, and the formatter would print each a second time.
    parser = argparse.ArgumentParser(description=description)
    add_dataclass_args(parser, cls)
    args = parser.parse_args(argv)
    cfg = config_from_args(cls, args)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as err:
            parser.error(str(err))
    return cfg, parser


def config_changes(saved: dict, cfg: Any, names: Sequence[str]) -> list[str]:
    """`--flag: before -> now` for each field in `names` whose value in the dataclass
    `cfg` differs from the `saved` config (as written to a run's config.json; a field
    missing there, from an older version, counts as its default)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    changes = []
    for name in names:
        old, now = saved.get(name, defaults[name]), getattr(cfg, name)
        old, now = (list(v) if isinstance(v, tuple | list) else v for v in (old, now))
        if old != now:
            changes.append(f"{flag_name(name)}: {old} -> {now}")
    return changes

"""The verb registry: ``commands`` registers each verb here and ``cli`` builds its parser from it,
so neither imports the other's module at load time."""

from __future__ import annotations

from collections.abc import Callable

COMMANDS: dict[str, tuple[Callable, Callable, str]] = {}


def command(name: str, help: str):
    """Register ``fn(args)`` under ``name``; the decorated ``add`` function declares its arguments."""

    def wrap(add: Callable) -> Callable:
        def register(run: Callable) -> Callable:
            COMMANDS[name] = (add, run, help)
            return run

        return register

    return wrap

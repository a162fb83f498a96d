"""The command's CW_* settings: where each came from, and what to check when ConnectWise refuses.

Settings come from the environment, overlaid by an optional ``--env-file`` read as python-dotenv
reads it (quotes, ``export``, inline comments, escapes in double quotes, ``${VAR}`` expansion, a
UTF-8 byte order mark). Messages name the settings and where they were read, never their values.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import attrs
from dotenv import dotenv_values
from dotenv.parser import parse_stream  # its line numbers, for the messages

from ._batches import StopKind
from ._exceptions import ConfigurationError

__all__ = ["Settings", "read_env_file"]

SITE_SETTINGS = ("CW_SITE", "CW_BASE_URL")
CREDENTIAL_SETTINGS = ("CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY", "CW_CLIENT_ID")

# What to check, per reason a run stopped: the settings, then advice. (Decisions as data.)
_CHECKS: dict[StopKind, tuple[tuple[str, ...], str]] = {
    "credentials": (
        CREDENTIAL_SETTINGS,
        "ConnectWise refused the key pair, company id or clientId",
    ),
    "permission": (
        ("CW_PUBLIC_KEY",),
        "that key's API member needs the Finance > Accounting Interface permission",
    ),
    "company": (("CW_COMPANY_ID", *SITE_SETTINGS), "ConnectWise has no such company there"),
    "unreachable": (SITE_SETTINGS, "also check the network, proxy or firewall on the way"),
}


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` settings of a dotenv file, read as python-dotenv reads them.

    ``${VAR}`` expands from earlier lines of the file, then from the environment.

    Raises:
        ConfigurationError: The file cannot be read, or a line is not ``NAME=value``
            (``file:line: ...``).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigurationError(f"{path}: not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise ConfigurationError(f"cannot read {path}: {err.strerror or err}") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            statement = binding.original.string  # may start with the blank lines before it
            blank = statement[: len(statement) - len(statement.lstrip())]
            line = binding.original.line + blank.count("\n")
            raise ConfigurationError(f"{path}:{line}: expected NAME=value") from None
    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    return {name: value for name, value in values.items() if value is not None}


@attrs.frozen
class Settings:
    """The environment the command runs with, and which names the env file set.

    Attributes:
        environ: The environment with the env file's settings over it.
        env_file: The ``--env-file`` path, or ``None``.
        from_file: The names the env file set.
    """

    environ: Mapping[str, str]
    env_file: Path | None = None
    from_file: frozenset[str] = frozenset()

    @classmethod
    def load(cls, env_file: Path | None) -> Settings:
        """The process environment, overlaid by ``env_file`` when given."""
        environ = dict(os.environ)
        if env_file is None:
            return cls(environ)
        values = read_env_file(env_file)
        return cls({**environ, **values}, env_file, frozenset(values))

    def where(self, names: tuple[str, ...]) -> str:
        """Where ``names`` were read: ``"in the environment"``, ``"in .env"``, or both."""
        in_file = [n for n in names if n in self.from_file]
        if self.env_file is None or not in_file:
            return "in the environment"
        if len(in_file) == len(names):
            return f"in {self.env_file}"
        return f"{_words(in_file)} in {self.env_file}, the others in the environment"

    def missing_hint(self) -> str:
        """Where missing settings were looked for."""
        if self.env_file is None:
            return "Looked in the environment."
        return f"Looked in {self.env_file} and in the environment."

    def check_hint(self, kind: StopKind) -> str | None:
        """What to check after a run stopped for ``kind``, naming settings and their source."""
        if kind not in _CHECKS:
            return None
        names, advice = _CHECKS[kind]
        present = tuple(n for n in names if self.environ.get(n, "").strip()) or names
        return f"check {_words(present)} (set {self.where(present)}); {advice}"


def _words(names: list[str] | tuple[str, ...]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

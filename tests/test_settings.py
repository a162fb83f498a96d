"""The command's settings: --env-file read as python-dotenv reads it, and what to check."""

from __future__ import annotations

import pytest
from dotenv import dotenv_values

from cw_glbatch import ConfigurationError
from cw_glbatch._settings import Settings, read_env_file

# Each file with what python-dotenv makes of it, written out so that the test can fail.
DOTENV_FILES = {
    "quotes": (
        "A='single # not a comment'\nB=\"double\"\nC=bare value\n",
        {"A": "single # not a comment", "B": "double", "C": "bare value"},
    ),
    "inline comments": ("A=1 # the id\nB='2' # quoted\n# whole line\n", {"A": "1", "B": "2"}),
    "export": ("export A=1\nexport   B='2'\n", {"A": "1", "B": "2"}),
    "escapes in double quotes": (
        'A="tab\\there"\nB="new\\nline"\nC="quote \\" inside"\nD=\'raw\\n\'\n',
        {"A": "tab\there", "B": "new\nline", "C": 'quote " inside', "D": "raw\\n"},
    ),
    "expansion": (
        "HOST=api-eu.myconnectwise.net\nA=https://${HOST}/x\nB=${FROM_ENV}-${NOPE}\n",
        {
            "HOST": "api-eu.myconnectwise.net",
            "A": "https://api-eu.myconnectwise.net/x",
            "B": "from-env-",
        },
    ),
    "byte order mark": ("\ufeffCW_SITE=x\n", {"CW_SITE": "x"}),
    "multiline": ('A="one\ntwo"\n', {"A": "one\ntwo"}),
}


@pytest.mark.parametrize("name", sorted(DOTENV_FILES))
def test_env_file_reads_as_python_dotenv_does(name, tmp_path, monkeypatch):
    """Each dotenv feature gives what python-dotenv gives, and what it should."""
    monkeypatch.setenv("FROM_ENV", "from-env")
    monkeypatch.delenv("NOPE", raising=False)
    text, expected = DOTENV_FILES[name]
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    assert read_env_file(path) == expected
    assert read_env_file(path) == dict(dotenv_values(path))


@pytest.mark.parametrize(
    ("text", "line"),
    [("A=1\nnonsense\n", 2), ("A=1\n\nB C=2\n", 3), ("A='unclosed\n", 1)],
)
def test_env_file_line_that_is_not_a_setting_is_named(text, line, tmp_path):
    """A line python-dotenv cannot read, or a bare name, is refused with file:line."""
    path = tmp_path / ".env"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=rf"^{path}:{line}: expected NAME=value$"):
        read_env_file(path)


def test_env_file_not_utf8_is_refused(tmp_path):
    """An env file that is not UTF-8 says so instead of a UnicodeDecodeError."""
    path = tmp_path / ".env"
    path.write_bytes(b"A=caf\xe9\n")
    with pytest.raises(ConfigurationError, match=rf"^{path}: not UTF-8 text"):
        read_env_file(path)


def test_env_file_overrides_the_environment(tmp_path, monkeypatch):
    """Settings in the file win over the environment, and are remembered as from the file."""
    monkeypatch.setenv("CW_PRIVATE_KEY", "from-env")
    monkeypatch.setenv("CW_PUBLIC_KEY", "pub")
    path = tmp_path / ".env"
    path.write_text("CW_PRIVATE_KEY=from-file\n")
    settings = Settings.load(path)
    assert settings.environ["CW_PRIVATE_KEY"] == "from-file"
    assert settings.environ["CW_PUBLIC_KEY"] == "pub"
    assert settings.from_file == {"CW_PRIVATE_KEY"}


@pytest.mark.parametrize(
    ("from_file", "expected"),
    [
        (set(), "in the environment"),
        ({"CW_PUBLIC_KEY", "CW_PRIVATE_KEY"}, "in /x/.env"),
        ({"CW_PRIVATE_KEY"}, "CW_PRIVATE_KEY in /x/.env, the others in the environment"),
    ],
)
def test_where_names_the_source_of_settings(from_file, expected, tmp_path):
    """where() says which settings came from the env file and which from the environment."""
    from pathlib import Path

    settings = Settings({}, Path("/x/.env"), frozenset(from_file))
    assert settings.where(("CW_PUBLIC_KEY", "CW_PRIVATE_KEY")) == expected


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("credentials", "CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY and CW_CLIENT_ID"),
        ("permission", "CW_PUBLIC_KEY"),
        ("company", "CW_COMPANY_ID and CW_SITE"),
        ("unreachable", "CW_SITE"),
    ],
)
def test_check_hint_names_the_settings_never_their_values(kind, names):
    """Each stop names the settings to check (only those set), never a value."""
    environ = {
        "CW_SITE": "site-value",
        "CW_COMPANY_ID": "company-value",
        "CW_PUBLIC_KEY": "public-value",
        "CW_PRIVATE_KEY": "private-value",
        "CW_CLIENT_ID": "client-value",
    }
    hint = Settings(environ).check_hint(kind)
    assert hint.startswith(f"check {names} (set in the environment); ")
    assert "value" not in hint


def test_check_hint_for_an_unexplained_stop_is_none():
    """A stop with no setting to blame (a 5xx) gives no hint."""
    assert Settings({}).check_hint("error") is None

"""Shared fixtures and settings for the cw_glbatch tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests._raw_server import RawServer
from tests.helpers import SAMPLES

pytest_plugins = ["pytester"]  # tests/test_docs.py runs the docs' test blocks with the real plugin

# CI runs the same examples every time; locally, "thorough" explores further.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)


@pytest.fixture
def samples() -> Path:
    """The folder of sample input files."""
    return SAMPLES


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    """Start a `RawServer` answering with ``reply``; each is closed after the test."""
    servers: list[RawServer] = []

    def start(reply: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.close()

"""Every ```python block in README.md and docs/**/*.md runs as written, against the simulator.

The convention, for whoever writes the docs:

- The blocks of one Markdown file run in order, in one namespace, like one interpreter session:
  a block may use what an earlier block of the same file defined. Each file starts afresh.
- They run in an empty folder holding ``batches.xml`` (the sample input of ``cw-glbatch demo``),
  with the ``CW_*`` variables pointing at a simulator on loopback that has unposted GL entries
  320000 to 320099. So ``ConnectWiseClient.from_env()`` and ``"batches.xml"`` work as written,
  and a block shows what a user types against a real tenant.
- Constructing a client with placeholder credentials (``private_key="..."``) sends nothing, so
  such a block runs as written too.
- A block that defines ``test_*`` functions is also run by pytest, on its own, as a test module,
  with the real ``connectwise`` fixture: it must import what it uses, and its tests must pass.
- A block that truly cannot run is skipped by the line ``<!-- docs-test: skip REASON -->`` just
  before its opening fence. No block is skipped today.

A failing block's traceback points at the Markdown file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrs
import pytest

from cw_glbatch._demo import DEMO_INPUT
from cw_glbatch.testing import FakeConnectWise

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b(.*?)-->\s*$")
_ENV_NAMES = ("CW_SITE", "CW_BASE_URL", "CW_COMPANY_ID", "CW_PUBLIC_KEY", "CW_PRIVATE_KEY",
              "CW_CLIENT_ID", "CW_CODEBASE", "CW_API_VERSION")  # fmt: skip


@attrs.frozen
class Block:
    """One ```python block: its code and the line of the file it starts on."""

    path: Path
    line: int  # of the first line of code
    code: str
    skip: str | None  # the reason given, when skipped

    def compiled(self) -> object:
        """The code, compiled so that tracebacks show the Markdown file's own line numbers."""
        return compile("\n" * (self.line - 1) + self.code, str(self.path), "exec")

    def defines_tests(self) -> bool:
        tree = ast.parse(self.code)
        return any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            for node in tree.body
        )


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    inside: tuple[int, str, str | None] | None = None  # (first code line, language, skip)
    body: list[str] = []
    for number, text in enumerate(lines, 1):
        fence = _FENCE.match(text)
        if inside is None and fence and fence.group(1):
            before = lines[number - 2] if number > 1 else ""
            skip = _SKIP.match(before)
            inside = (number + 1, fence.group(1), skip.group(1).strip() if skip else None)
            body = []
        elif inside is not None and fence and not fence.group(1):
            if inside[1] == "python":
                blocks.append(Block(path, inside[0], "\n".join(body) + "\n", inside[2]))
            inside = None
        elif inside is not None:
            body.append(text)
    return blocks


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


DOCUMENTED = [path for path in documents() if python_blocks(path)]


def test_the_harness_finds_the_examples():
    """The blocks the docs are known to hold are found (so the test below cannot pass vacuously)."""
    found = {path.relative_to(ROOT).as_posix(): len(python_blocks(path)) for path in DOCUMENTED}
    assert {"README.md", "docs/guide.md", "docs/client.md", "docs/testing.md"} <= found.keys()
    assert sum(found.values()) >= 7


def test_a_skip_marker_is_read(tmp_path):
    """The skip line before a fence marks that block, with its reason."""
    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n```python\nx = 1\n```\n<!-- docs-test: skip needs a tenant -->\n```python\n"
        "y = 2\n```\n```sh\nls\n```\n"
    )
    assert [(b.line, b.code, b.skip) for b in python_blocks(doc)] == [
        (3, "x = 1\n", None),
        (7, "y = 2\n", "needs a tenant"),
    ]


@pytest.fixture
def simulated_tenant(pytester, monkeypatch):
    """The folder the blocks run in, and CW_* set for a loopback simulator."""
    fake = FakeConnectWise()
    fake.add_unposted(range(320000, 320100))
    (pytester.path / "batches.xml").write_text(DEMO_INPUT, encoding="utf-8")
    with fake.serve() as server:
        for name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(pytester.path)
        yield pytester


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run_as_written(path, simulated_tenant):
    """Each python block of the file runs in order; blocks defining tests pass under pytest."""
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in python_blocks(path):
        if block.skip is not None:
            continue
        exec(block.compiled(), namespace)  # noqa: S102 - our own documentation
        if block.defines_tests():
            module = simulated_tenant.makepyfile(**{f"test_docs_{block.line}": block.code})
            result = simulated_tenant.runpytest_inprocess(str(module), "-p", "no:cacheprovider")
            assert result.ret == 0, f"{path}:{block.line}: its tests failed\n" + str(result.stdout)
            assert result.parseoutcomes().get("passed", 0) >= 1

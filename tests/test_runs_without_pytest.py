"""The library, the simulator and the CLI start with only the runtime dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a child interpreter where importing any test-only package fails, as in a plain install.
_BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {"pytest", "_pytest", "respx", "hypothesis", "trustme"}:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_module_imports_without_test_packages():
    """Every module but the pytest plugin imports with pytest, respx and hypothesis absent."""
    done = _run_blocked(
        """
        import pkgutil, cw_glbatch
        names = [m.name for m in pkgutil.walk_packages(cw_glbatch.__path__, "cw_glbatch.")]
        for name in names:
            if name not in {"cw_glbatch.__main__", "cw_glbatch.testing._plugin"}:
                __import__(name)
        print(len(names))
        """
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10


def test_cli_help_and_version_run_without_test_packages():
    """`cw-glbatch --help` and `--version` exit 0 with pytest absent."""
    for flag in ("--help", "--version"):
        done = _run_blocked(
            f"""
            import sys
            from cw_glbatch._cli import main
            try:
                main([{flag!r}])
            except SystemExit as stop:
                sys.exit(stop.code)
            """
        )
        assert done.returncode == 0, done.stderr
        assert "cw-glbatch" in done.stdout


def test_demo_runs_without_test_packages(tmp_path):
    """`cw-glbatch demo` runs to its planned outcome with pytest absent."""
    done = _run_blocked(
        f"""
        import sys
        from cw_glbatch._cli import main
        sys.exit(main(["demo", "--dir", {str(tmp_path)!r}]))
        """
    )
    assert done.returncode == 0, done.stderr
    assert {"batches.xml", "created.xml", "failed.xml"} <= {p.name for p in tmp_path.iterdir()}

"""cw-glbatch export: the request it sends, the two files it writes, what it says (respx)."""

from __future__ import annotations

import json
import stat

import pytest

from cw_glbatch import XmlBatchReader
from cw_glbatch._cli import main

ROOT = "https://cw.example.test/v4_6_release/apis/3.0"
EXPORT = f"{ROOT}/finance/accounting/export"


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    """CW_* settings for a ConnectWise that respx answers."""
    for name in ("CW_SITE", "CW_CODEBASE", "CW_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "CW_BASE_URL": ROOT,
        "CW_COMPANY_ID": "acme",
        "CW_PUBLIC_KEY": "pub",
        "CW_PRIVATE_KEY": "priv",
        "CW_CLIENT_ID": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def answer(samples) -> dict:
    return json.loads((samples / "gl_export.json").read_text("utf-8"))


def export(tmp_path, *extra: str) -> int:
    return main(["export", "--batches", str(tmp_path / "batches.xml"), *extra])


def test_one_batch_per_kind_with_its_flag(respx_mock, tmp_path, answer, capsys):
    """The batches file holds one batch per kind, that kind's ids, its flag alone true."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path) == 0
    batches = list(XmlBatchReader(tmp_path / "batches.xml"))
    assert [(b.gl_rec_ids, b.batch_options(), b.errors) for b in batches] == [
        (
            (1010, 1011, 1012, 1013, 1014, 1020),
            {"export_invoices": True, "export_expenses": False, "export_products": False},
            (),
        ),
        (
            (2001, 2004, 2002, 2003),
            {"export_invoices": False, "export_expenses": True, "export_products": False},
            (),
        ),
        (
            (3001, 3002, 3003),
            {"export_invoices": False, "export_expenses": False, "export_products": True},
            (),
        ),
    ]
    assert all(b.identifier is None for b in batches)
    out = capsys.readouterr().out
    assert "exported 13 GL entries (invoices 6, expenses 4, products 3)" in out
    assert "3 batches; next: cw-glbatch create" in out


def test_export_file_is_connectwise_answer(respx_mock, tmp_path, answer):
    """--export writes the export's JSON as ConnectWise sent it."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path, "--export", str(tmp_path / "export.json")) == 0
    assert json.loads((tmp_path / "export.json").read_text("utf-8")) == answer


def test_options_shape_the_request(respx_mock, tmp_path):
    """--kinds, --thru-date and --location become the export's flags, thruDate and locationId."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    code = export(
        tmp_path, "--kinds", "products, invoices", "--thru-date", "2026-11-30", "--location", "3"
    )
    assert code == 0
    assert json.loads(route.calls.last.request.content) == {
        "exportInvoicesFlag": True,
        "exportExpensesFlag": False,
        "exportProductsFlag": True,
        "thruDate": "2026-11-30T00:00:00Z",
        "locationId": 3,
    }


def test_kinds_limit_the_batches(respx_mock, tmp_path, answer):
    """Only the kinds asked for become batches."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path, "--kinds", "expenses") == 0
    (batch,) = XmlBatchReader(tmp_path / "batches.xml")
    assert batch.gl_rec_ids == (2001, 2004, 2002, 2003)


def test_nothing_to_export_writes_empty_batches_and_says_so(respx_mock, tmp_path, capsys):
    """No unposted GL entries: an empty <Batches/>, exit 0, said plainly."""
    respx_mock.post(EXPORT).respond(200, json={"transactions": [], "expenses": []})
    (tmp_path / "batches.xml").write_text("old")
    assert export(tmp_path, "--thru-date", "2026-11-30") == 0
    assert (tmp_path / "batches.xml").read_text("utf-8") == (
        '<?xml version="1.0" encoding="utf-8"?>\n<Batches/>\n'
    )
    out = capsys.readouterr().out
    assert "nothing to export: no unposted GL entries (invoices, expenses, products, " in out
    assert "thru 2026-11-30" in out


def test_json_summary(respx_mock, tmp_path, answer, capsys):
    """--json prints the counts and the files."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path, "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "gl_entry_ids": 13,
        "by_kind": {"invoices": 6, "expenses": 4, "products": 3},
        "batches": 3,
        "batches_file": str(tmp_path / "batches.xml"),
        "export_file": None,
    }


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (("--kinds", "invoices,payments"), "comma-separated list of invoices, expenses, products"),
        (("--thru-date", "30/11/2026"), "is not a date"),
        (("--location", "-1"), "a location id is a whole number"),
    ],
)
def test_bad_options_exit_2_before_any_request(respx_mock, tmp_path, capsys, option, words):
    """A bad option is a usage error naming it; nothing is sent, nothing written."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    with pytest.raises(SystemExit) as info:
        export(tmp_path, *option)
    assert info.value.code == 2
    assert words in capsys.readouterr().err
    assert not route.called
    assert not (tmp_path / "batches.xml").exists()


@pytest.mark.parametrize(
    ("paths", "words"),
    [
        (("--batches", "{d}/same.xml", "--export", "{d}/same.xml"), "are the same file"),
        (("--batches", "{d}"), "is a directory"),
        (("--batches", "{d}/b.xml", "--export", "{d}"), "is a directory"),
        (("--batches", "/dev/null"), "not a regular file"),
        (("--batches", "{d}/missing/b.xml"), "does not exist"),
    ],
    ids=["same-file", "batches-dir", "export-dir", "device", "no-folder"],
)
def test_unusable_paths_exit_2_before_any_request(respx_mock, tmp_path, capsys, paths, words):
    """Colliding, special or unwritable output paths: exit 2, one line, nothing sent or left."""
    route = respx_mock.post(EXPORT).respond(200, json={})
    argv = ["export", *(part.format(d=tmp_path) for part in paths)]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not route.called
    assert list(tmp_path.iterdir()) == []


def test_failed_export_exits_3_and_writes_nothing(respx_mock, tmp_path, capsys):
    """ConnectWise refusing the export exits 3 with its message; no file is written."""
    respx_mock.post(EXPORT).respond(403, json={"code": "Security", "message": "no access"})
    assert export(tmp_path, "--export", str(tmp_path / "export.json")) == 3
    assert "no access" in capsys.readouterr().err
    assert not (tmp_path / "batches.xml").exists()
    assert not (tmp_path / "export.json").exists()


def test_files_are_readable_by_their_owner_only(respx_mock, tmp_path, answer):
    """The batches and export files hold accounting data: mode 0600, no temporary file left."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path, "--export", str(tmp_path / "export.json")) == 0
    for name in ("batches.xml", "export.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batches.xml", "export.json"]


def test_quiet_prints_nothing_but_writes_the_files(respx_mock, tmp_path, answer, capsys):
    """-q: no summary on stdout; the files are written all the same."""
    respx_mock.post(EXPORT).respond(200, json=answer)
    assert export(tmp_path, "-q") == 0
    assert capsys.readouterr().out == ""
    assert len(list(XmlBatchReader(tmp_path / "batches.xml"))) == 3

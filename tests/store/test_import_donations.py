"""`mobilise import donations`, on SQLite and PostgreSQL (each batch commits): rows kept,
rows refused with their line and reason, replays de-duplicated by external id."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import Invalid
from engine.intake.gift_imports import GiftReport, import_donations
from engine.render import tokens
from engine.store.db import make_sessionmaker
from engine.store.models import Donation, Supporter
from tests.factories import sent_email, unique

PARIS = ZoneInfo("Europe/Paris")
SECRET = "import-secret"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(committed_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(committed_engine)


def run_import(sessions: sessionmaker[Session], path: Path, batch_size: int = 2) -> GiftReport:
    return import_donations(
        sessions, path=path, now=lambda: NOW, zone=PARIS, secret=SECRET, batch_size=batch_size
    )


def test_a_french_export_imports_and_bad_rows_go_to_rejects(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given a signer who was sent an email, and an export naming her gift's reference
    domain = unique("d") + ".fr"
    with sessions.begin() as session:
        anne = Supporter(email=f"anne@{domain}", locale="fr", created_at=NOW)
        session.add(anne)
        session.flush()
        ask_id = sent_email(session, anne.id, "ask-first", NOW - timedelta(days=2), due_at=NOW)
    reference = tokens.reference_token(SECRET, ask_id)
    ids = unique("pay")
    path = tmp_path / "dons.csv"
    path.write_text(
        "Courriel;Montant;Devise;Date du don;Fréquence;Identifiant;Référence\n"
        f"anne@{domain};30,00;EUR;30/05/2026 10:00;ponctuel;{ids}-1;{reference}\n"  # line 2
        f"nouveau@{domain};15;;31/05/2026;mensuel;{ids}-2;\n"  # line 3: gave, never signed
        f"bad@{domain};gratuit;EUR;31/05/2026;;{ids}-3;\n"  # line 4: bad amount
        f"anne@{domain};30,00;EUR;30/05/2026 10:00;ponctuel;{ids}-1;\n"  # line 5: same gift
        f"late@{domain};10;EUR;02/07/2026;;{ids}-4;\n"  # line 6: in the future
        f"=cmd@{domain};10;EUR;31/05/2026;annuel;{ids}-5;\n"  # line 7: bad frequency
        "\n"
        f"zoe@{domain};12.5;EUR;2026-05-31T08:00:00Z;;{ids}-6;pas-une-reference\n",  # line 9
        encoding="utf-8-sig",
    )

    report = run_import(sessions, path)

    r = report.recorded
    assert (r.imported, r.duplicates, report.rejected) == (3, 1, 3)
    assert (r.new_supporters, r.by_reference, r.by_last_click) == (2, 1, 0)
    assert report.unknown_references == 1
    assert report.summary().splitlines() == [
        "imported 3 / duplicates 1 / rejected 3",
        "attributed: 1 by reference, 0 by last click, 2 unattributed",
        "new supporters (gave without signing; no consent, no campaign email): 2",
        "references not made by this installation: 1",
        f"rejected rows: {path.with_suffix('.rejects.csv')}",
    ]
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["field"]) for r in rejects] == [
        ("4", "amount"),
        ("6", "donated_at"),
        ("7", "frequency"),
    ]
    assert rejects[2]["Courriel"] == f"'=cmd@{domain}"  # formula neutralised
    with sessions() as session:
        stored = {
            key: (cents, currency, frequency, message_id)
            for key, cents, currency, frequency, message_id in session.execute(
                select(
                    Donation.external_id,
                    Donation.amount_cents,
                    Donation.currency,
                    Donation.frequency,
                    Donation.message_id,
                ).where(Donation.external_id.like(f"{ids}-%"))
            )
        }
    assert stored == {
        f"{ids}-1": (3000, "EUR", "one-off", ask_id),
        f"{ids}-2": (1500, "EUR", "monthly", None),
        f"{ids}-6": (1250, "EUR", "one-off", None),
    }

    # When the same file is imported again, nothing new is recorded
    again = run_import(sessions, path, batch_size=100)
    assert (again.recorded.imported, again.recorded.duplicates) == (0, 4)
    assert again.recorded.new_supporters == 0


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email,amount,donated_at,external_id,iban", "unknown column 'iban'"),
        # A control character is shown escaped: a terminal would act on it
        ("email,amount,donated_at,external_id,a\x1b[2Jb", "unknown column 'a\\x1b[2Jb'"),
        ("email,amount,donated_at,external_id,consentement dons", "unknown column"),
        ("email,amount,montant,donated_at,external_id", "column 'montant' repeats column 'amount'"),
        ("email,donated_at,external_id", "missing column 'amount'"),
    ],
)
def test_a_file_with_columns_nobody_reads_is_refused_before_any_row(
    sessions: sessionmaker[Session], tmp_path: Path, header: str, message: str
) -> None:
    path = tmp_path / "dons.csv"
    path.write_text(f"{header}\nx@example.org,10,2026-05-01,{unique('p')},x\n", encoding="utf-8")
    with pytest.raises(Invalid) as exc:
        run_import(sessions, path)
    assert any(str(p).startswith(f"{path}:1: {message}") for p in exc.value.problems)


def test_the_command_prints_what_it_did_and_exits_1_on_a_bad_file(
    project: Path, tmp_path: Path
) -> None:
    good = tmp_path / "dons.csv"
    good.write_text(
        "email,amount,donated_at,frequency,external_id\n"
        "camille@example.org,20,2026-05-30,monthly,pay-1\n"
        "camille@example.org,zero,2026-05-30,monthly,pay-2\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("email,montant,quand\nx@example.org,1,2026\n", encoding="utf-8")
    runner = CliRunner()

    done = runner.invoke(app, ["import", "donations", str(good), "--now", "2026-06-01T12:00"])
    refused = runner.invoke(app, ["import", "donations", str(bad)])

    assert done.exit_code == 0, done.output
    assert "imported 1 / duplicates 0 / rejected 1" in done.output
    assert "new supporters (gave without signing; no consent, no campaign email): 1" in done.output
    assert (tmp_path / "dons.rejects.csv").exists()
    assert refused.exit_code == 1
    assert f"{bad}:1: unknown column 'quand'" in refused.output

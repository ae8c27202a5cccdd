"""`mobilise import donations`, on SQLite and PostgreSQL (each batch commits): rows kept,
rows refused with their line and reason, replays de-duplicated by external id, refunds
and cancelled monthly gifts applied once."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import Invalid
from engine.intake.gift_imports import GiftReport, import_donations
from engine.render import tokens
from engine.store import counts, recounts
from engine.store.db import make_sessionmaker
from engine.store.models import Donation, Supporter
from engine.store.step_figures import Key, StepFigures
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


# --- what became of the gifts since: refunds and cancelled monthly gifts


def journey_figures(session: Session, journey: str) -> tuple[dict[Key, StepFigures], ...]:
    """The journey's summary rows, and what a full recount from the tables finds, sends
    aside (the emails here are written as sent, not sent by the dispatcher, which counts)."""
    stored = {
        (journey, row.step_id, row.variant or ""): replace(row.figures, sent=0)
        for row in counts.read(session, journey)
    }
    recounted = {
        key: replace(f, sent=0) for key, f in recounts.recount(session).items() if key[0] == journey
    }
    return stored, recounted


def sent_asks(sessions: sessionmaker[Session], journey: str, *emails: str) -> list[int]:
    """A signer for each address, sent the journey's ask 20 days ago: the asks' ids."""
    with sessions.begin() as session:
        people = [Supporter(email=email, locale="fr", created_at=NOW) for email in emails]
        session.add_all(people)
        session.flush()
        sent_at = NOW - timedelta(days=20)
        return [sent_email(session, p.id, "ask", sent_at, journey_id=journey) for p in people]


def test_a_later_export_refunds_and_cancels_what_an_earlier_one_recorded(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given two signers sent an ask, and a first export with their gifts, all paid: Anne
    # gave 30 € through the ask, Paul 10 € a month (two payments)
    domain = unique("d") + ".fr"
    journey = unique("j-refunds")
    ask, paul_ask = sent_asks(sessions, journey, f"anne@{domain}", f"paul@{domain}")
    ids = unique("pay")
    anne_ref = tokens.reference_token(SECRET, ask)
    paul_ref = tokens.reference_token(SECRET, paul_ask)
    first = tmp_path / "mai.csv"
    first.write_text(
        "email;montant;date du don;fréquence;identifiant;référence;statut\n"
        f"anne@{domain};30;20/05/2026;ponctuel;{ids}-a;{anne_ref};payé\n"
        f"paul@{domain};10;15/05/2026;mensuel;{ids}-p1;{paul_ref};payé\n"
        f"paul@{domain};10;15/04/2026;mensuel;{ids}-p0;;\n",
        encoding="utf-8",
    )
    run_import(sessions, first)
    with sessions() as session:
        before = counts.read(session, journey)
    assert sum(r.figures.gifts for r in before) == 2
    # When the next export says Anne's gift was refunded and Paul's monthly gift cancelled,
    # and lists a gift refunded before any export showed it
    later = tmp_path / "juin.csv"
    later.write_text(
        "email;montant;date du don;fréquence;identifiant;référence;statut;remboursé le;"
        "date d'annulation\n"
        f"anne@{domain};30;20/05/2026;ponctuel;{ids}-a;{anne_ref};remboursé;28/05/2026;\n"
        f"paul@{domain};10;15/05/2026;mensuel;{ids}-p1;{paul_ref};annulé;;25/05/2026 12:00\n"
        f"zoe@{domain};50;21/05/2026;ponctuel;{ids}-z;;Remboursé;;\n",
        encoding="utf-8",
    )
    report = run_import(sessions, later)

    # Then the refund and the cancellation apply to the gifts recorded, and the new gift is
    # recorded with its refund (dated at the import when the file gives no date)
    assert (report.recorded.imported, report.recorded.duplicates, report.rejected) == (1, 2, 0)
    assert (report.refunded, report.cancelled, report.already) == (2, 1, 0)
    assert "refunded 2 / monthly gifts cancelled 1 / already so 0" in report.summary()
    with sessions() as session:
        changed = {
            key: (refunded, cancelled, message)
            for key, refunded, cancelled, message in session.execute(
                select(
                    Donation.external_id,
                    Donation.refunded_at,
                    Donation.cancelled_at,
                    Donation.message_id,
                ).where(Donation.external_id.like(f"{ids}-%"))
            )
        }
        # And the summary rows lose exactly the refunded gift and the monthly amount
        after = {r.step_id: r.figures for r in counts.read(session, journey)}["ask"]
        stored, recounted = journey_figures(session, journey)
    paris = datetime(2026, 5, 28, tzinfo=PARIS).astimezone(UTC)
    cancelled = datetime(2026, 5, 25, 10, 0, tzinfo=UTC)
    assert changed == {
        f"{ids}-a": (paris, None, ask),  # still attributed to its email
        f"{ids}-p1": (None, cancelled, paul_ask),
        f"{ids}-p0": (None, cancelled, None),  # the giver's earlier payment too
        f"{ids}-z": (NOW, None, None),  # net zero, still there
    }
    assert (after.donors, after.gifts, after.one_off_cents, after.monthly_cents) == (1, 1, 0, 0)
    assert stored == recounted

    # When the same export is imported again, nothing is refunded or cancelled twice
    again = run_import(sessions, later, batch_size=100)
    assert (again.recorded.imported, again.recorded.duplicates) == (0, 3)
    assert (again.refunded, again.cancelled, again.already) == (0, 0, 3)
    with sessions() as session:
        dates = dict(
            session.execute(
                select(Donation.external_id, Donation.refunded_at).where(
                    Donation.external_id.like(f"{ids}-%")
                )
            ).all()
        )
        assert journey_figures(session, journey) == (stored, recounted)
    assert dates[f"{ids}-a"] == paris
    assert dates[f"{ids}-z"] == NOW


def test_a_cancelled_row_ends_the_monthly_gift_its_subscription_names_not_the_others(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given Paul, sent an ask, who holds two monthly gifts at the platform: 10 € (mandate
    # A, two payments) and 5 € through the ask (mandate B), as an export with a column of
    # mandates says; and a row that gives a mandate to a one-off gift
    domain = unique("d") + ".fr"
    journey = unique("j-mandates")
    (ask,) = sent_asks(sessions, journey, f"paul@{domain}")
    ids = unique("pay")
    ref = tokens.reference_token(SECRET, ask)
    header = "email;montant;date du don;fréquence;identifiant;référence;mandat;statut\n"
    first = tmp_path / "mai.csv"
    first.write_text(
        header + f"paul@{domain};10;15/04/2026;mensuel;{ids}-a1;;{ids}-A;\n"
        f"paul@{domain};5;20/04/2026;mensuel;{ids}-b1;{ref};{ids}-B;\n"
        f"paul@{domain};10;15/05/2026;mensuel;{ids}-a2;;{ids}-A;\n"
        f"paul@{domain};40;16/05/2026;ponctuel;{ids}-x;;{ids}-X;\n",  # line 5
        encoding="utf-8",
    )
    report = run_import(sessions, first)
    assert (report.recorded.imported, report.rejected) == (3, 1)
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        (rejected,) = csv.DictReader(handle)
    assert (rejected["line"], rejected["field"]) == ("5", "subscription_id")

    # When the next export says mandate A's latest payment is cancelled
    later = tmp_path / "juin.csv"
    later.write_text(
        header + f"paul@{domain};10;15/05/2026;mensuel;{ids}-a2;;{ids}-A;annulé\n",
        encoding="utf-8",
    )
    report = run_import(sessions, later)

    # Then mandate A's payments end, mandate B's stay in force, and so does the ask's
    # monthly amount; the summary rows still equal a recount
    assert (report.cancelled, report.already) == (1, 0)
    with sessions() as session:
        ended = {
            key: cancelled is not None
            for key, cancelled in session.execute(
                select(Donation.external_id, Donation.cancelled_at).where(
                    Donation.external_id.like(f"{ids}-%")
                )
            )
        }
        figures = {r.step_id: r.figures for r in counts.read(session, journey)}["ask"]
        stored, recounted = journey_figures(session, journey)
    assert ended == {f"{ids}-a1": True, f"{ids}-a2": True, f"{ids}-b1": False}
    assert (figures.gifts, figures.monthly_cents) == (1, 500)
    assert stored == recounted


def test_a_file_that_pays_then_refunds_one_gift_nets_to_zero(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given a file that lists a payment, then further down its refund, in another batch
    ids = unique("pay")
    path = tmp_path / "dons.csv"
    path.write_text(
        "email,amount,donated_at,external_id,status,refunded_at\n"
        f"a@{ids}.fr,20,2026-05-20,{ids}-1,paid,\n"
        f"b@{ids}.fr,20,2026-05-20,{ids}-2,,\n"
        f"a@{ids}.fr,20,2026-05-20,{ids}-1,,2026-05-21T10:00:00Z\n",  # a date alone: refunded
        encoding="utf-8",
    )
    # When it is imported
    report = run_import(sessions, path)
    # Then the gift is recorded once and refunded
    assert (report.recorded.imported, report.recorded.duplicates, report.refunded) == (2, 1, 1)
    with sessions() as session:
        refunded = session.scalar(
            select(Donation.refunded_at).where(Donation.external_id == f"{ids}-1")
        )
    assert refunded == datetime(2026, 5, 21, 10, tzinfo=UTC)


def test_a_bad_status_is_rejected_with_its_line_and_the_rest_imports(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    # Given an export with statuses, some of which cannot be
    domain = unique("d") + ".fr"
    ids = unique("pay")
    first = tmp_path / "avant.csv"
    first.write_text(
        f"email,amount,donated_at,external_id\nonce@{domain},5,2026-05-02,{ids}-o\n",
        encoding="utf-8",
    )
    run_import(sessions, first)
    path = tmp_path / "dons.csv"
    path.write_text(
        "Courriel;Montant;Date du don;Fréquence;Identifiant;Statut;Remboursé le\n"
        f"a@{domain};10;20/05/2026;;{ids}-1;remboursé;19/05/2026\n"  # line 2: before the gift
        f"b@{domain};10;20/05/2026;;{ids}-2;contesté;\n"  # line 3: not a status
        f"c@{domain};10;20/05/2026;;{ids}-3;annulé;\n"  # line 4: a one-off gift cancelled
        f"d@{domain};10;20/05/2026;ponctuel;{ids}-4;payé;\n"  # line 5: fine
        f"e@{domain};10;20/05/2026;;{ids}-5;;juin\n"  # line 6: not a date
        # line 7: cancels a gift recorded as one-off by the earlier file
        f"once@{domain};5;02/05/2026;mensuel;{ids}-o;annulé;\n",
        encoding="utf-8",
    )
    # When it is imported
    report = run_import(sessions, path)
    # Then each bad row is rejected with its line, field and reason, and the others import
    assert report.recorded.imported == 1
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        rejects = [(r["line"], r["field"], r["reason"]) for r in csv.DictReader(handle)]
    assert [(line, field) for line, field, _ in rejects] == [
        ("2", "refunded_at"),
        ("3", "status"),
        ("4", "status"),
        ("6", "refunded_at"),
        ("7", "external_id"),
    ]
    assert "before the gift" in rejects[0][2]
    assert "one-off" in rejects[4][2]
    assert report.rejected == 5
    with sessions() as session:
        cancelled = session.scalar(
            select(Donation.cancelled_at).where(Donation.external_id == f"{ids}-o")
        )
    assert cancelled is None


@pytest.mark.parametrize("refunds", [3, 30])
def test_a_batchs_refunds_cost_the_same_statements_whatever_their_number(
    sessions: sessionmaker[Session], committed_engine: Engine, tmp_path: Path, refunds: int
) -> None:
    # Given gifts recorded, then an export refunding them (one twice, with a later date)
    ids = unique("set")
    rows = [f"g{i}@{ids}.fr,20,2026-05-20,{ids}-{i}" for i in range(refunds)]
    given = tmp_path / "paid.csv"
    given.write_text("email,amount,donated_at,external_id\n" + "\n".join(rows) + "\n")
    run_import(sessions, given, batch_size=100)
    later = tmp_path / "refunded.csv"
    later.write_text(
        "email,amount,donated_at,external_id,refunded_at\n"
        + "\n".join(f"{row},2026-05-21T10:00:00Z" for row in rows)
        + f"\n{rows[0]},2026-05-25T10:00:00Z\n"
    )

    # When the export is imported in one batch, its statements counted
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(committed_engine, "before_cursor_execute", count)
    try:
        report = import_donations(
            sessions, path=later, now=lambda: NOW, zone=PARIS, secret=SECRET, batch_size=100
        )
    finally:
        event.remove(committed_engine, "before_cursor_execute", count)

    # Then every gift is refunded once, at its first date, by one UPDATE whatever their number
    assert (report.refunded, report.already) == (refunds, 1)
    assert seen.count("UPDATE") == 1
    with sessions() as session:
        dates = session.scalars(
            select(Donation.refunded_at).where(Donation.external_id.like(f"{ids}-%"))
        ).all()
    assert set(dates) == {datetime(2026, 5, 21, 10, tzinfo=UTC)}

"""`mobilise import signatures`, on SQLite and PostgreSQL (each batch commits)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Invalid
from engine.intake.imports import ImportReport, import_signatures
from engine.store import petitions, pipeline, signatures
from engine.store.db import make_sessionmaker
from tests.factories import petition_def, unique

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def sessions(committed_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(committed_engine)


@pytest.fixture
def slug(sessions: sessionmaker[Session], now: datetime) -> str:
    with sessions.begin() as session:
        return petitions.upsert(session, petition_def(milestones=(3,)), now=now).slug


def run_import(
    sessions: sessionmaker[Session],
    slug: str,
    path: Path,
    now: datetime,
    batch_size: int = 2,
) -> ImportReport:
    return import_signatures(
        sessions,
        slug=slug,
        path=path,
        now=lambda: now,
        zone=PARIS,
        batch_size=batch_size,
    )


def test_a_french_export_imports_and_bad_rows_go_to_rejects(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    domain = unique("d") + ".fr"
    path = tmp_path / "feuilles.csv"
    path.write_text(
        "Courriel;Prénom;Nom;Code postal;Date de signature;consentement nouvelles\n"
        f"anne@{domain};Anne;Durand;13001;13/05/2024;oui\n"  # line 2
        f"pas-une-adresse;Bob;Petit;75011;;\n"  # line 3: bad email
        f"ANNE@{domain.upper()} ;Anne;Durand;13001;;non\n"  # line 4: same signer
        f";Jeanne;Papier;20000;14/05/2024;\n"  # line 5: paper signature (Corsica)
        f'carl@{domain};"Carl\nMulti";Ligne;99999;;\n'  # lines 6-7: bad postal code
        f"dora@{domain};Dora;Date;69001;31/02/2024;\n"  # line 8: bad date
        f"=cmd@{domain};Eve;Formule;33000;2024-05-15T10:00:00;1\n"  # line 9
        "\n"
        f"fred@{domain};Fred;;97411;;\n",  # line 11: La Réunion
        encoding="utf-8-sig",
    )

    report = run_import(sessions, slug, path, now)

    o = report.outcome
    assert (o.imported, o.duplicates, o.paper, report.rejected) == (3, 1, 1, 3)
    assert o.milestones == [3]
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["field"]) for r in rejects] == [
        ("3", "email"),
        ("6", "postal_code"),
        ("8", "signed_at"),
    ]
    with sessions() as session:
        assert petitions.read(session, slug).count == 4

    again = run_import(sessions, slug, path, now)

    assert (again.outcome.imported, again.outcome.paper) == (0, 0)
    assert again.outcome.duplicates == 5
    with sessions() as session:
        assert petitions.read(session, slug).count == 4


def test_rejects_neutralise_spreadsheet_formulas(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text('email,first_name\n=HYPERLINK("x"),Zoé\n', encoding="utf-8")

    report = run_import(sessions, slug, path, now)

    assert report.rejects_file is not None
    text = report.rejects_file.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text


def test_a_file_without_known_columns_is_refused_with_its_headers(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("colour,size\nred,2\n", encoding="utf-8")

    with pytest.raises(Invalid) as refused:
        run_import(sessions, slug, path, now)

    assert "wrong.csv:1" in str(refused.value.problems[0])
    assert "colour" in (refused.value.problems[0].hint or "")


def test_an_unreadable_line_midway_stops_the_import_after_the_batches_before_it(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given a file that stops being UTF-8 far below its first batches
    domain = unique("d") + ".fr"
    good = "".join(f"s{i}@{domain};Ann;Lee\n" for i in range(2_000))
    path = tmp_path / "cut.csv"
    path.write_bytes(f"email;first_name;last_name\n{good}".encode() + b"x\xff@y.fr;A;B\n")

    # When it is imported (the file is parsed by another process)
    with pytest.raises(UnicodeDecodeError):
        run_import(sessions, slug, path, now, batch_size=100)

    # Then the error reaches the caller, and what was recorded before it stays recorded
    with sessions() as session:
        assert 0 < petitions.read(session, slug).count < 2_000


def test_a_supporter_inserted_meanwhile_falls_back_to_the_safe_insert(
    sessions: sessionmaker[Session],
    slug: str,
    now: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a known supporter, and the bulk insert blind to it (as it is to a signer who
    # commits between its check and its insert)
    domain = unique("d") + ".fr"
    first = tmp_path / "first.csv"
    first.write_text(f"email\nknown@{domain}\n", encoding="utf-8")
    run_import(sessions, slug, first, now)
    join = "LEFT JOIN supporters sup ON sup.email = st.email"
    assert join in signatures._RESOLVE_SUPPORTERS.text
    blind = signatures._RESOLVE_SUPPORTERS.text.replace(join, f"{join} AND false")
    monkeypatch.setattr(signatures, "_RESOLVE_SUPPORTERS", pipeline.sql(blind))
    second = tmp_path / "second.csv"
    second.write_text(f"email\nnew@{domain}\nknown@{domain}\nother@{domain}\n", encoding="utf-8")

    # When a file with that supporter and new ones is imported
    report = run_import(sessions, slug, second, now, batch_size=10)

    # Then every new signer is recorded once, and the known one counted as a duplicate
    assert (report.outcome.imported, report.outcome.duplicates) == (2, 1)
    with sessions() as session:
        assert petitions.read(session, slug).count == 3


def test_each_signature_goes_to_its_signer_with_their_consents(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given signers already known from another petition (one of them with a consent on
    # record), in a file where they come between new signers, in batches
    domain = unique("d") + ".fr"
    with sessions.begin() as session:
        other = petitions.upsert(session, petition_def(), now=now).slug
    known = tmp_path / "known.csv"
    known.write_text(
        f"email;consentement nouvelles\nk1@{domain};oui\nk2@{domain};\n", encoding="utf-8"
    )
    run_import(sessions, other, known, now)
    emails = [f"z{i}@{domain}" if i % 3 else f"a{i}@{domain}" for i in range(9)]
    emails[4], emails[7] = f"k2@{domain}", f"k1@{domain}"
    path = tmp_path / "mixed.csv"
    path.write_text(
        "email;consentement nouvelles;consentement dons\n"
        + "".join(
            f"{e};{'oui' if i % 2 else 'non'};{'oui' if i == 7 else ''}\n"
            for i, e in enumerate(emails)
        ),
        encoding="utf-8",
    )

    # When the file is imported
    report = run_import(sessions, slug, path, now, batch_size=4)

    # Then each signature, ranked in file order, belongs to the signer of its line, and each
    # signer's consents are the ones of their line, recorded once more for the known one
    assert (report.outcome.imported, report.outcome.milestones) == (9, [3])
    with sessions() as session:
        signed = session.execute(
            text(
                "SELECT s.seq, sup.email FROM signatures s"
                " JOIN supporters sup ON sup.id = s.supporter_id"
                " JOIN petitions p ON p.id = s.petition_id WHERE p.slug = :slug"
                " ORDER BY s.seq"
            ),
            {"slug": slug},
        ).all()
        assert petitions.read(session, slug).count == 9
        given = session.execute(
            text(
                "SELECT sup.email, c.purpose, c.granted FROM consents c"
                " JOIN supporters sup ON sup.id = c.supporter_id"
                " WHERE sup.email LIKE :domain ORDER BY c.id"
            ),
            {"domain": f"%@{domain}"},
        ).all()
    assert [tuple(r) for r in signed] == list(enumerate(emails, start=1))
    assert sorted(given) == sorted(
        [(f"k1@{domain}", "updates", True)]
        + [(e, "updates", bool(i % 2)) for i, e in enumerate(emails)]
        + [(f"k1@{domain}", "fundraising", True)]
    )

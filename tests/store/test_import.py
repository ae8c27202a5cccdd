"""`mobilise import signatures`, on SQLite and PostgreSQL (each batch commits)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Invalid
from engine.intake.signature_imports import ImportReport, import_signatures
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
        secret="test-secret",
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
    # signer's consents are the ones of their line (the known one's grant of `updates` is on
    # record already: not recorded twice)
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
        [(e, "updates", bool(i % 2)) for i, e in enumerate(emails)]
        + [(f"k1@{domain}", "fundraising", True)]
    )


def _rejects(report: ImportReport) -> list[dict[str, str]]:
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_malformed_row_is_rejected_with_its_line_and_the_rest_imports(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given a file where malformed rows lie between good ones, across batches
    domain = unique("d") + ".fr"
    rows = [
        "email;first_name;last_name;signed_at",
        f"a1@{domain};Ann;Lee;2024-05-13",  # 2
        f"a2@{domain};Ann;Lee;0001-01-01",  # 3: in Paris, before datetime's first year
        f"a3@{domain};Ann;Lee;9999-12-31T23:59:59-12:00",  # 4: past datetime's last year
        f"a4@{domain};Ann;Lee;1899-12-31",  # 5
        f"a5@{domain};Ann;{'x' * 131_073};",  # 6: over the CSV reader's cell limit
        f"a6@{domain};Ann;{'x' * 101};",  # 7: longer than a name
        f'a7@{domain};"Ann;Lee;',  # 8: a quote left open swallows the lines below it...
        f"a8@{domain};Ann;Lee;",  # 9: ...which are read again
        f"a9@{domain};Zo\x00e;Lee;",  # 10: NUL
        f"b1@{domain};Ann;Lee;2999-01-01",  # 11: future
        f'b2@{domain};"Ann"x;Lee;',  # 12: a quoted cell with more after it (ends line 8's)
        f"b3@{domain};Ann;Lee;",  # 13
        f'b4@{domain};"Ann;Lee;',  # 14: a quote still open at the end of the file
        f"b5@{domain};Ann;Lee;",  # 15
    ]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    # When it is imported in small batches
    report = run_import(sessions, slug, path, now, batch_size=2)

    # Then each malformed row is rejected with its line and a reason, the others imported,
    # and the totals add up to the file's rows
    o = report.outcome
    assert o.imported == 4  # a1, a8, b3, b5
    assert o.imported + o.duplicates + o.paper + report.rejected == len(rows) - 1
    rejected = {int(r["line"]): (r["field"], r["reason"]) for r in _rejects(report)}
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8, 10, 11, 12, 14]
    assert rejected[3][0] == rejected[4][0] == rejected[5][0] == rejected[11][0] == "signed_at"
    assert "out of the range" in rejected[3][1]
    assert "out of the range" in rejected[4][1]
    assert "before 1900" in rejected[5][1]
    assert "in the future" in rejected[11][1]
    assert rejected[6] == ("row", "a cell longer than 131,072 characters")
    assert rejected[7][0] == "last_name"
    assert "not closed" in rejected[8][1]
    assert rejected[10] == ("first_name", "first_name: U+0000 control character is not allowed")
    assert rejected[12][0] == "row"
    assert "not closed" in rejected[14][1]
    with sessions() as session:
        assert petitions.read(session, slug).count == o.imported


def test_a_reimport_records_the_consents_a_file_now_carries(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given signers imported from a file without consent columns
    domain = unique("d") + ".fr"
    emails = [f"r{i}@{domain}" for i in range(5)]
    first = tmp_path / "first.csv"
    first.write_text("email\n" + "".join(f"{e}\n" for e in emails), encoding="utf-8")
    run_import(sessions, slug, first, now)

    # When a later export of the same signers, with their answers, is imported (twice)
    later = tmp_path / "later.csv"
    later.write_text(
        "email;consent_updates;signed_at\n"
        + "".join(
            f"{e};{'oui' if i % 2 else 'non'};{now:%Y-%m-%d}\n" for i, e in enumerate(emails)
        ),
        encoding="utf-8",
    )
    report = run_import(sessions, slug, later, now + timedelta(days=1))
    again = run_import(sessions, slug, later, now + timedelta(days=1))

    # Then their answers are recorded once, and no signature is added
    assert (report.outcome.imported, report.outcome.duplicates) == (0, 5)
    assert (again.outcome.imported, again.outcome.duplicates) == (0, 5)
    with sessions() as session:
        given = session.execute(
            text(
                "SELECT sup.email, c.purpose, c.granted FROM consents c"
                " JOIN supporters sup ON sup.id = c.supporter_id WHERE sup.email LIKE :domain"
            ),
            {"domain": f"%@{domain}"},
        ).all()
    assert sorted((e, p, bool(g)) for e, p, g in given) == [
        (e, "updates", bool(i % 2)) for i, e in enumerate(emails)
    ]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("email;consent_newsletter", "consent_newsletter"),
        ("email;Consentement infolettre", "Consentement infolettre"),
        ("email;prénom;couleur", "couleur"),
        ("email;courriel", "courriel"),  # twice the same column
    ],
)
def test_a_column_nobody_reads_refuses_the_file_naming_it(
    sessions: sessionmaker[Session],
    slug: str,
    now: datetime,
    tmp_path: Path,
    header: str,
    named: str,
) -> None:
    # Given a file with a column the petition has no use for
    path = tmp_path / "extra.csv"
    path.write_text(f"{header}\nz@example.fr;oui;x\n", encoding="utf-8")

    # When it is imported, then nothing is read and the column is named at line 1
    with pytest.raises(Invalid) as refused:
        run_import(sessions, slug, path, now)

    assert [f"'{named}'" in str(p) for p in refused.value.problems] == [True]
    assert str(refused.value.problems[0]).startswith(f"{path}:1: ")
    with sessions() as session:
        assert petitions.read(session, slug).count == 0


def test_french_names_of_every_column_are_accepted(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    path = tmp_path / "fr.csv"
    path.write_text(
        "Adresse e-mail;Prénom;Nom de famille;CP;Signé le;Accord nouvelles;Consentement dons\n"
        "zoe@example.fr;Zoé;Lee;75011;13/05/2024;oui;non\n",
        encoding="utf-8",
    )

    report = run_import(sessions, slug, path, now)

    assert (report.outcome.imported, report.rejected) == (1, 0)


def test_header_cells_are_neutralised_in_the_rejects_file(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given a header cell a spreadsheet would run (it still names a column: `-email`)
    path = tmp_path / "formula.csv"
    path.write_text("-email,first_name\nnope,Zoé\n", encoding="utf-8")

    report = run_import(sessions, slug, path, now)

    # Then the rejects file quotes it as it quotes data cells
    assert report.rejects_file is not None
    header = report.rejects_file.read_text(encoding="utf-8").splitlines()[0]
    assert header == "line,field,reason,'-email,first_name"


def test_an_import_into_a_double_opt_in_petition_is_not_asked_to_confirm(
    sessions: sessionmaker[Session], now: datetime, tmp_path: Path
) -> None:
    # Given a petition with double opt-in, and a file of two signers
    with sessions.begin() as session:
        declared = petition_def().model_copy(update={"double_opt_in": True})
        slug = petitions.upsert(session, declared, now=now).slug
    domain = unique("d") + ".fr"
    path = tmp_path / "liste.csv"
    path.write_text(f"email;consent_updates\nana@{domain};oui\nbea@{domain};non\n")
    # When it is imported
    report = run_import(sessions, slug, path, now)
    # Then both count at once: no confirmation is asked of an import (docs/journeys.md)
    assert report.outcome.imported == 2
    with sessions() as session:
        assert petitions.read(session, slug).count == 2
        waiting = session.scalar(
            text("SELECT count(*) FROM pending_signatures p JOIN petitions x"
                 " ON x.id = p.petition_id WHERE x.slug = :slug"),
            {"slug": slug},
        )  # fmt: skip
        assert waiting == 0


class Recorded:
    """A `Progress` that keeps what it was told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []
        self.advances: list[float] = []

    def phase(self, name: str, total: float) -> None:
        self.phases.append((name, total))

    def advance(self, amount: float) -> None:
        self.advances.append(amount)


def test_the_import_counts_the_files_lines_as_its_batches_are_recorded(
    sessions: sessionmaker[Session], slug: str, now: datetime, tmp_path: Path
) -> None:
    # Given seven lines after the header: five signers, one record over two lines, no final
    # line break
    domain = unique("d") + ".fr"
    path = tmp_path / "lignes.csv"
    rows = [f"p{i}@{domain},P{i}" for i in range(5)] + [f'multi@{domain},"Deux\nLignes"']
    path.write_text("email,first_name\n" + "\n".join(rows), encoding="utf-8")
    progress = Recorded()
    # When it is imported in batches of two
    import_signatures(
        sessions,
        slug=slug,
        path=path,
        now=lambda: now,
        zone=PARIS,
        batch_size=2,
        secret="test-secret",
        progress=progress,
    )
    # Then one phase counts the seven lines, advanced batch by batch up to the line where
    # the last record starts (the bar is full once the command ends)
    assert progress.phases == [("Importing signatures", 7)]
    assert progress.advances == [2, 2, 2]

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from engine.send.files import FileTransport
from engine.send.transport import Accepted, Address
from tests.fakes.messages import thank_you


def _read(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_each_message_becomes_one_readable_eml(tmp_path: Path, now: datetime) -> None:
    # given a file transport on an empty outbox
    transport = FileTransport(tmp_path / "outbox", clock=lambda: now)
    # when two messages are sent
    results = transport.send([thank_you(1), thank_you(2)])
    # then each is accepted and written under its message id
    assert results == [
        Accepted("msg-0000001", "msg-0000001.eml"),
        Accepted("msg-0000002", "msg-0000002.eml"),
    ]
    parsed = _read(tmp_path / "outbox" / "msg-0000001.eml")
    assert parsed["To"] == "Signataire 1 <signer1@example.net>"
    assert parsed["Subject"] == "Merci Prénom1 !"
    assert parsed["X-Mobilise-Journey"] == "stop-reconnaissance-faciale"
    assert parsed["X-Mobilise-Step"] == "thanked"
    assert parsed["X-Mobilise-Message"] == "msg-0000001"
    assert parsed["List-Unsubscribe"] == "<https://mobilise.example.org/u/tok0000001>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == "<msg-0000001@example.org>"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert "Bonjour Prénom1," in text.get_content()
    assert "Pr&eacute;nom1" in html.get_content()
    assert list((tmp_path / "outbox").glob(".*")) == []  # no temporary file left behind


def test_sending_again_does_not_rewrite_the_file(tmp_path: Path, now: datetime) -> None:
    # given a message already in the outbox
    transport = FileTransport(tmp_path, clock=lambda: now)
    transport.send([thank_you(1)])
    first = (tmp_path / "msg-0000001.eml").read_bytes()
    # when the same message id is sent again with other content
    results = transport.send([thank_you(1, subject="Autre sujet")])
    # then it is accepted and the first file is kept as it was
    assert results == [Accepted("msg-0000001", "msg-0000001.eml")]
    assert (tmp_path / "msg-0000001.eml").read_bytes() == first


def test_unwritable_outbox_is_a_transient_failure(tmp_path: Path, now: datetime) -> None:
    # given an outbox path below a regular file, so that it cannot be created
    (tmp_path / "not-a-folder").write_text("")
    transport = FileTransport(tmp_path / "not-a-folder" / "outbox", clock=lambda: now)
    # when a batch is sent
    results = transport.send([thank_you(1), thank_you(2)])
    # then every message fails transiently instead of raising
    assert [r.state for r in results] == ["transient", "transient"]


def test_non_ascii_names_and_subjects_survive_the_round_trip(tmp_path: Path, now: datetime) -> None:
    message = thank_you(
        1,
        to=Address("zoe@example.net", "Zoë Müller, «Visages»"),
        subject="Déjà 140 000 signatures — merci -first_name- !",
    )
    FileTransport(tmp_path, clock=lambda: now).send([message])
    parsed = _read(tmp_path / "msg-0000001.eml")
    assert parsed["To"].addresses[0].display_name == "Zoë Müller, «Visages»"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.net"
    assert parsed["Subject"] == "Déjà 140 000 signatures — merci Prénom1 !"
    assert (tmp_path / "msg-0000001.eml").read_bytes().isascii()

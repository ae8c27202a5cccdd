"""The laptop transport: one `.eml` per message in the outbox folder, named by message id.

Writes are atomic (temporary file, fsync, rename) so that a reader or a crash never sees
half a message, and idempotent: a message whose file exists is not written again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.send import mime
from engine.send.transport import Accepted, OutgoingMessage, SendResult, Transient


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FileTransport:
    outbox_dir: Path
    clock: Callable[[], datetime] = field(default=_utc_now)
    name: str = "file"
    batch_size: int = 500
    substitutes: bool = False

    def path_for(self, message_id: str) -> Path:
        return self.outbox_dir / f"{message_id}.eml"

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        now = self.clock()
        try:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create {self.outbox_dir}: {exc}"
            return [Transient(m.message_id, reason) for m in messages]
        results: list[SendResult] = []
        for message in messages:
            target = self.path_for(message.message_id)
            try:
                if not target.exists():
                    self._write_atomically(target, mime.to_bytes(message, now=now))
            except OSError as exc:
                results.append(Transient(message.message_id, f"cannot write {target}: {exc}"))
                continue
            results.append(Accepted(message.message_id, target.name))
        return results

    def _write_atomically(self, target: Path, data: bytes) -> None:
        descriptor, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def forget(outbox_dir: Path, message_ids: Sequence[int]) -> int:
    """Delete the `.eml` copies of these messages (an erasure); returns how many were there."""
    gone = 0
    for message_id in message_ids:
        try:
            (outbox_dir / f"{message_id}.eml").unlink()
        except FileNotFoundError:
            continue
        gone += 1
    return gone

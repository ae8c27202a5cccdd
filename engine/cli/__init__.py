"""The `mobilise` command: one Typer app, one sub-module per domain noun."""

from __future__ import annotations

import typer

from engine.cli import (
    apikeys,
    db,
    demo,
    donations,
    gdpr,
    journeys,
    outbox,
    petitions,
    preview,
    server,
    simulate,
    stats,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(apikeys.app, name="apikey")
app.add_typer(outbox.app, name="outbox")
app.add_typer(gdpr.app, name="gdpr")
app.add_typer(petitions.import_app, name="import")
petitions.import_app.command("donations")(donations.import_donations)
app.command("sync")(petitions.sync)
app.command("run")(server.run)
app.command("worker")(server.worker)
app.command("validate")(journeys.validate)
app.command("tick")(journeys.tick)
app.command("simulate")(simulate.simulate)
app.command("explain")(journeys.explain)
app.command("segments")(journeys.segments)
app.command("preview")(preview.preview)
app.command("stats")(stats.stats)
app.command("demo")(demo.demo)


def main() -> None:
    app()

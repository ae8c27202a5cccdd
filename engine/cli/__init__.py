"""The `mobilise` command: one Typer app, one module per command or command group."""

from __future__ import annotations

import typer

from engine.cli import (
    apikeys,
    db,
    demo,
    explain,
    gdpr,
    imports,
    outbox,
    preview,
    segments,
    server,
    simulate,
    stats,
    sync,
    tick,
    validate,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(db.app, name="db")
app.add_typer(apikeys.app, name="apikey")
app.add_typer(outbox.app, name="outbox")
app.add_typer(gdpr.app, name="gdpr")
app.add_typer(imports.import_app, name="import")
app.command("sync")(sync.sync)
app.command("run")(server.run)
app.command("worker")(server.worker)
app.command("validate")(validate.validate)
app.command("tick")(tick.tick)
app.command("simulate")(simulate.simulate)
app.command("explain")(explain.explain)
app.command("segments")(segments.segments)
app.command("preview")(preview.preview)
app.command("stats")(stats.stats)
app.command("demo")(demo.demo)


def main() -> None:
    app()

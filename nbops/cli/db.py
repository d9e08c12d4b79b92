"""`nbops db check | backups | backup | restore`: the state db, checked, copied and restored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from nbops.cli.app import cli, format_option


@cli.group("db")
def db_group() -> None:
    """The state db (.nbops/state.db): every run and deployment nbops knows. It is backed up
    before and after each deploy, rollback and stop (the newest ten are kept)."""


@db_group.command("check")
@format_option("text", "json")
def check(fmt: str) -> None:
    """Open the state db and run SQLite's integrity check; exit 2 with the way out if damaged."""
    from nbops.run.home import Home

    home = Home.default()
    db = home.db()  # raises StateDbDamaged, printed as one `error:` line
    if fmt == "json":
        click.echo(json.dumps({"path": str(db.path), "ok": True, "backups": len(db.backups())}))
        return
    click.echo(f"{db.path}: ok ({len(db.backups())} backups in {db.backups_dir})")


@db_group.command("backups")
@format_option("text", "json")
def backups(fmt: str) -> None:
    """List the backups, newest first (readable while the db itself is damaged)."""
    from nbops.run.database import list_backups
    from nbops.run.home import Home

    found = list_backups(Home.default().root / "state.db")
    if fmt == "json":
        click.echo(json.dumps([_describe(path) for path in found], indent=2))
        return
    if not found:
        click.echo("no backups yet: they are taken around each deploy, rollback and stop")
    for path in found:
        click.echo(f"{path.name}  {path.stat().st_size:,} bytes  {_when(path)}")


@db_group.command("backup")
def backup() -> None:
    """Take a backup now."""
    from nbops.run.home import Home

    click.echo(str(Home.default().db().backup("manual")))


@db_group.command("restore")
@click.argument("backup", required=False)
def restore(backup: str | None) -> None:
    """Put BACKUP (a name from `nbops db backups`; default: the newest) in place of the state
    db. The old file is moved aside, never deleted; deployments keep serving meanwhile."""
    from nbops.errors import NbopsError
    from nbops.run.database import list_backups, restore_backup
    from nbops.run.home import Home

    path = Home.default().root / "state.db"
    found = list_backups(path)
    chosen = _chosen(found, backup)
    if chosen is None:
        raise NbopsError(
            f"no backup named {backup!r}." if backup else "there is no backup to restore.",
            where=str(path.parent / "backups"),
            fix="`nbops db backups` lists them." if found else "Nothing to restore from.",
        )
    aside = restore_backup(path, chosen)
    moved = f"; the old file is now {aside.name}" if aside else ""
    click.echo(f"restored {chosen.name} to {path}{moved}")


def _chosen(found: list[Path], name: str | None) -> Path | None:
    if name is None:
        return found[0] if found else None
    return next((path for path in found if path.name in (name, f"{name}.db")), None)


def _describe(path: Path) -> dict[str, object]:
    return {"name": path.name, "bytes": path.stat().st_size, "taken": _when(path)}


def _when(path: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(path.stat().st_mtime))

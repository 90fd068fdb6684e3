"""The ``soajs`` command: run the local gateway, show the registry, validate a service config.

Exit codes: 0 success, 1 invalid configuration or settings (a missing extra, an address that is
not the maintenance API, or a refusal by the gateway), 2 wrong usage, 3 gateway unreachable.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any, NoReturn

import click

from soajs.errors import missing_extra_message
from soajs.gateway.wire import redact_secrets as redact

__all__ = ["main", "redact"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

# The third-party modules the commands import lazily: (what a user installs, the extra with it).
_EXTRA_MODULES = {
    "yaml": ("PyYAML", "gateway"),
    "starlette": ("Starlette", "gateway"),
    "uvicorn": ("uvicorn", "gateway"),
}


def _exit_missing_extra(exc: ModuleNotFoundError, feature: str) -> NoReturn:
    """Exit 1 saying which extra installs a missing module; re-raise if no extra brings it."""
    known = _EXTRA_MODULES.get((exc.name or "").partition(".")[0])
    if known is None:
        raise exc
    module, extra = known
    click.echo(f"error: {missing_extra_message(feature, module, extra)}", err=True)
    raise SystemExit(EXIT_INVALID) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="soajs-python", prog_name="soajs")
def main() -> None:
    """Tools for SOAJS services written in Python."""


@main.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON gateway configuration (or a MongoDB seed in Extended JSON).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Data port (default: environment.dataPort; 0 picks a free port).",
)
@click.option(
    "--maintenance-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Maintenance API port (default: data port + maintenanceInc).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def gateway(
    config_path: Path,
    host: str,
    port: int | None,
    maintenance_port: int | None,
    log_level: str,
) -> None:
    """Run the local SOAJS gateway until Ctrl-C."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    from soajs.errors import ConfigValidationError

    try:
        from soajs.gateway.config import load_config
        from soajs.gateway.server import LocalGateway

        config = load_config(config_path)
    except ModuleNotFoundError as exc:
        _exit_missing_extra(exc, "soajs gateway")
    except ConfigValidationError as exc:
        if isinstance(exc.__cause__, ModuleNotFoundError):
            _exit_missing_extra(exc.__cause__, "soajs gateway")
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    local = LocalGateway(config, host=host, port=port, maintenance_port=maintenance_port)
    stopped = threading.Event()
    # Ctrl-C and SIGTERM only ask the loop below to stop, so shutdown is always clean.
    previous = {
        signum: signal.signal(signum, lambda *_: stopped.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            local.start()
        except OSError as exc:
            click.echo(f"error: cannot listen on {host}: {exc.strerror or exc}", err=True)
            raise SystemExit(EXIT_INVALID) from None
        click.echo(f"data port        {local.data_url}")
        click.echo(f"maintenance API  {local.maintenance_url}")
        click.echo(f"SOAJS_REGISTRY_API={local.registry_api} SOAJS_ENV={local.env}")
        click.echo(f"external keys    {len(local.ext_keys)} configured (see the config file)")
        while not stopped.wait(0.5):
            pass
        click.echo("stopping")
    finally:
        local.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@main.group()
def registry() -> None:
    """Inspect the registry served by the gateway (SOAJS_REGISTRY_API, SOAJS_ENV)."""


@registry.command("show")
@click.option("--service", "service", default=None, help="Fetch as this service (serviceName).")
@click.option("--json", "as_json", is_flag=True, help="Print the redacted registry as JSON.")
def registry_show(service: str | None, as_json: bool) -> None:
    """Fetch the registry and print it, secrets redacted."""
    from soajs.errors import GatewayUnavailable, RegistryError, SettingsError
    from soajs.registry.client import RegistryClient
    from soajs.settings import Settings

    try:
        settings = Settings()
        client = RegistryClient.from_settings(settings)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    name = service or settings.service_name or ""
    try:
        with client:
            fetched = client.fetch(settings.env, name)
    except GatewayUnavailable as exc:
        if exc.status_code == 404:
            # The maintenance API answers every path; a 404 means the address is something else,
            # most often the data port. The message says which address to try.
            click.echo(f"error: SOAJS_REGISTRY_API is not the maintenance API: {exc}", err=True)
            raise SystemExit(EXIT_INVALID) from None
        click.echo(f"error: gateway unreachable: {exc}", err=True)
        raise SystemExit(EXIT_UNREACHABLE) from None
    except RegistryError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    data = redact(fetched.raw)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _print_registry(data)


def _print_registry(data: dict[str, Any]) -> None:
    click.echo(f"environment  {data.get('environment')}  (timeLoaded {data.get('timeLoaded')})")
    awareness = data.get("awareness") or {}
    if awareness:
        click.echo(f"gateway      {awareness.get('host')}:{awareness.get('port')}")
    click.echo("services")
    for name, given in (data.get("services") or {}).items():
        entry = given if isinstance(given, dict) else {}
        hosts = entry.get("hosts") or {}
        versions = ", ".join(
            f"v{version}: {', '.join(ips)}"
            for version, ips in hosts.items()
            if version != "latest" and isinstance(ips, list)
        )
        click.echo(
            f"  {name:<16} group={entry.get('group')} port={entry.get('port')}"
            + (f"  [{versions}]" if versions else "")
        )
    databases = sorted({*(data.get("coreDB") or {}), *(data.get("tenantMetaDB") or {})})
    click.echo(f"databases    {', '.join(databases) or '-'}")
    click.echo(f"custom       {', '.join(sorted(data.get('custom') or {})) or '-'}")


@main.group()
def config() -> None:
    """Work with a service configuration file."""


@config.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def config_validate(file: Path) -> None:
    """Check a service configuration file (JSON, or YAML with PyYAML).

    A Node service's soa.json is read as it is (serviceName, serviceGroup, servicePort,
    serviceVersion).
    """
    from soajs.errors import ConfigValidationError
    from soajs.models.service_config import Config

    try:
        loaded = Config.from_file(file)
    except ConfigValidationError as exc:
        click.echo(f"invalid: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    except OSError as exc:
        click.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    click.echo(f"valid: {loaded.name} v{loaded.version} ({loaded.type}, port {loaded.port})")

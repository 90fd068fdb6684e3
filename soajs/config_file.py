"""Reading a configuration file (JSON or YAML) into a mapping, bounded in size.

One rule for every file soajs reads: the service configuration (:meth:`soajs.Config.from_file`)
and the local gateway's configuration (:func:`soajs.gateway.load_config`).

* ``.json`` is read as JSON; ``.yaml`` and ``.yml`` as YAML (PyYAML, the ``gateway`` extra).
* Any other name is read as YAML when PyYAML is installed (YAML reads JSON too, so a JSON file
  under any name loads), and as JSON when it is not.
* A file larger than :data:`MAX_CONFIG_FILE_SIZE` bytes (or the caller's ``max_size``) is
  refused before it is parsed: a configuration file is a boundary, and pointing at a log or a
  device by mistake should fail fast with a message, not fill the memory.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

from soajs.errors import ConfigValidationError, missing_extra_message

__all__ = ["MAX_CONFIG_FILE_SIZE", "read_config_file"]

MAX_CONFIG_FILE_SIZE = 4 * 1024 * 1024
"""The largest configuration file read, in bytes (4 MiB), unless a caller passes ``max_size``."""

_YAML_SUFFIXES = (".yaml", ".yml")


def read_config_file(
    path: str | PathLike[str],
    *,
    expected: str,
    error: type[ConfigValidationError] = ConfigValidationError,
    max_size: int = MAX_CONFIG_FILE_SIZE,
) -> dict[str, Any]:
    """Read a JSON or YAML file whose top level is a mapping.

    Args:
        path: the file.
        expected: what the mapping holds, for the error when the top level is not one, e.g.
            ``"an object of configuration fields"``.
        error: the error class raised, so each caller keeps its own.
        max_size: the largest file read, in bytes.

    Raises:
        ConfigValidationError: (``error``) the file is too large, not valid JSON or YAML, not a
            mapping, or YAML while PyYAML is not installed; the message names the file.
        OSError: the file cannot be read.
        UnicodeDecodeError: the file is not UTF-8.
    """
    file = Path(path)
    with file.open("rb") as stream:
        content = stream.read(max_size + 1)
    if len(content) > max_size:
        raise error(
            f"{file}: larger than {max_size} bytes, the limit of a configuration file "
            "(is this the right file?)"
        )
    text = content.decode("utf-8")
    data = _parse_yaml(text, file, error) if _is_yaml(file) else _parse_json(text, file, error)
    if not isinstance(data, dict):
        raise error(f"{file}: expected {expected}")
    return data


def _is_yaml(file: Path) -> bool:
    suffix = file.suffix.lower()
    if suffix == ".json":
        return False
    return suffix in _YAML_SUFFIXES or _yaml_installed()


def _yaml_installed() -> bool:
    try:
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


def _parse_json(text: str, file: Path, error: type[ConfigValidationError]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _parse_yaml(text: str, file: Path, error: type[ConfigValidationError]) -> Any:
    try:
        import yaml
    except ImportError as exc:
        hint = missing_extra_message(f"{file}: reading YAML", "PyYAML", "gateway")
        # The ImportError stays as the cause: the CLI reports a missing extra by its module.
        raise error(f"{hint} (or pip install pyyaml), or use a JSON file") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{file}: not valid YAML ({exc})") from None

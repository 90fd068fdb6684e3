"""The bundled gateway emulator, :class:`soajs.gateway.LocalGateway`, as a gateway under test.

It is given the same seed as the real gateway (with this run's ports) so every scenario can run
against both and expect the same behaviour.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from soajs.gateway import LocalGateway

from .realgateway import GatewayUnderTest, run_seed

_LOGGER = "soajs.gateway"


class EmulatedGateway(GatewayUnderTest):
    """A :class:`LocalGateway` on free loopback ports, logging to ``local-gateway.log``."""

    kind = "local"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.log_path = workdir / "local-gateway.log"
        self.seed_path = workdir / "local-seed.json"
        seed = run_seed(self.data_port, self.maintenance_inc)
        self.seed_path.write_text(json.dumps(seed, ensure_ascii=False), encoding="utf-8")
        self._gateway: LocalGateway | None = None
        self._handler: logging.Handler | None = None
        self._saved_level = logging.NOTSET

    def start_gateway(self) -> None:
        """Start a LocalGateway on this object's ports (no-op when one runs)."""
        if self._gateway is not None:
            return
        self._capture_log()
        gateway = LocalGateway(
            self.seed_path, port=self.data_port, maintenance_port=self.maintenance_port
        )
        self._gateway = gateway.start()

    def stop_gateway(self) -> None:
        """Stop the LocalGateway; a later start begins with a fresh registry, as after a crash."""
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            gateway.stop()

    def close(self) -> None:
        """Stop the gateway and its log capture."""
        self.stop_gateway()
        logger = logging.getLogger(_LOGGER)
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
            logger.setLevel(self._saved_level)

    def _capture_log(self) -> None:
        if self._handler is not None:
            return
        logger = logging.getLogger(_LOGGER)
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._saved_level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        self._handler = handler


@contextlib.contextmanager
def running_emulator(workdir: Path) -> Iterator[EmulatedGateway]:
    """Start the emulator with the suite's seed and stop it on the way out."""
    gateway = EmulatedGateway(workdir)
    try:
        gateway.start_gateway()
        yield gateway
    finally:
        gateway.close()

"""The bare FastAPI app the end-to-end run compares the example with: no soajs at all."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def create_app() -> FastAPI:
    """``GET /echo`` answering a dict shaped like the example's, and ``GET /heartbeat``."""
    app = FastAPI(title="bare")

    @app.get("/echo")
    def echo() -> dict[str, Any]:
        return {
            "service": "bare",
            "tenant": {"code": "TTEN", "name": "Test Tenant"},
            "user": None,
            "config": None,
            "environment": "dev",
        }

    @app.get("/heartbeat")
    def heartbeat() -> dict[str, bool]:
        return {"result": True}

    return app

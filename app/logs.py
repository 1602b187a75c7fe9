"""What the server logs about requests: the request line and its status, not who sent it.

uvicorn's access log starts each line with the client's address and port; with a timestamp
from the log collector, that joins every vote to a device on the room's network. Unless
``BELIEFGAP_LOG_CLIENT_ADDRESS`` is true, the address is left out: ``beliefgap serve`` logs
access lines without it (``uvicorn_log_config``), and an app under plain ``uvicorn
app.main:app`` puts ``-`` in its place (``hide_client_addresses``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

ACCESS_LOGGER = "uvicorn.access"
ACCESS_FORMAT = '%(levelprefix)s "%(request_line)s" %(status_code)s'
ACCESS_FORMAT_WITH_ADDRESS = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
HIDDEN = "-"


class ClientAddressFilter(logging.Filter):
    """Replaces the client's address in uvicorn's access records (their first argument)."""

    def __init__(self) -> None:
        super().__init__("beliefgap-client-address")
        self.hide = True

    def filter(self, record: logging.LogRecord) -> bool:
        if self.hide and isinstance(record.args, tuple) and record.args:
            record.args = (HIDDEN, *record.args[1:])
        return True


def hide_client_addresses(log_client_address: bool) -> None:
    """Take the address out of access records (or, when asked, keep it). Idempotent: one
    filter on the access logger, whose choice the latest app made."""
    logger = logging.getLogger(ACCESS_LOGGER)
    found = next((f for f in logger.filters if isinstance(f, ClientAddressFilter)), None)
    if found is None:
        found = ClientAddressFilter()
        logger.addFilter(found)
    found.hide = not log_client_address


def uvicorn_log_config(log_client_address: bool) -> dict[str, Any]:
    """uvicorn's logging set-up, with access lines that name no client unless asked to."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = (
        ACCESS_FORMAT_WITH_ADDRESS if log_client_address else ACCESS_FORMAT
    )
    return config

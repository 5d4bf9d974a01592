"""API keys kept out of the logs. A Bearer key travels in a header, which no log line
shows; a Bacalhau node's key rides in its probe URL (`/api/v1/bacalhau/probe/<key>`), which
every access line and Django's error lines do. `MaskKeys` masks such keys wherever the web
servers (`manage.py serve`'s, gunicorn's) and Django log a request, keeping the prefix the
database stores (`fpk_AbCdEfGh***`), which names the key without giving it away."""

from __future__ import annotations

import logging
import re

__all__ = ["MaskKeys", "mask_keys"]

_SHOWN = 12  # the prefix the database keeps and the keys page shows (services.PREFIX_LENGTH)
# The probe URL's last segment, whatever it holds (a key with a typo is still a secret), and
# anything shaped like a key anywhere else.
_PROBE_SEGMENT = re.compile(r"(/bacalhau/probe/)([^/?#\s\"']+)", re.IGNORECASE)
_KEY = re.compile(r"fpk_[A-Za-z0-9]{20,}")


def _masked(key: str) -> str:
    return key[:_SHOWN] + "***" if key.startswith("fpk_") and len(key) > _SHOWN else "***"


def mask_keys(text: str) -> str:
    """`text` with every key from a probe URL, and every other key, masked."""
    text = _PROBE_SEGMENT.sub(lambda m: m.group(1) + _masked(m.group(2)), text)
    return _KEY.sub(lambda m: _masked(m.group(0)), text)


class MaskKeys(logging.Filter):
    """A filter for loggers that write requests (access lines, `Internal Server Error: /…`):
    the message, and the traceback of one with an exception, with keys masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_keys(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_keys(logging.Formatter().formatException(record.exc_info))
        return True

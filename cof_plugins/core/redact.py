"""Credentials out of everything a user sees: reports, errors, logs and run records.

Endpoints are often given with their secret inside (``http://user:secret@host/v1``,
``...?api_key=...``) and HTTP libraries repeat the URL in their messages. Every place that
shows a URL, or an error that may quote one, passes it through ``redact_url`` or
``redact_text``: user info and secret-looking query values become ``***``, as do
``Authorization`` header values and ``Bearer`` tokens in free text. The request itself still
uses the real URL; only what is shown changes.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameter names (lower case, "-" as "_") whose values are secrets.
SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "auth", "authorization", "secret",
     "password", "passwd", "pwd", "sig", "signature", "x_api_key", "client_secret"}
)  # fmt: skip
# Linear patterns: one character class per run, no nested quantifiers.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s'\"<>]+")
_HEADER = re.compile(r"(?i)\b(authorization|x-api-key|api-key)(['\"]?\s{0,8}[:=]\s{0,8}['\"]?)"
                     r"(bearer\s|basic\s|token\s)?[^\s'\",}]+")  # fmt: skip
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")


def redact_url(url: str | None) -> str | None:
    """``url`` with its user info and secret query values masked (None stays None)."""
    if not url:
        return url
    if "://" not in url and "@" in url.split("/", 1)[0]:  # "user:pw@host/..." with no scheme
        url = f"{MASK}@{url.split('@', 1)[1]}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL.sub(MASK, url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [(k, MASK if _secret(k) else v) for k, v in pairs]
        query = urlencode(masked, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMS


def redact_text(text: str) -> str:
    """Every URL in ``text`` redacted, and header or bearer credentials masked."""
    text = _URL.sub(lambda m: redact_url(m.group(0)) or "", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)


class RedactingFilter(logging.Filter):
    """Masks credentials in a logger's records (httpx logs every request's full URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True


def _clean(value: object) -> object:
    """Strings and URL objects (httpx.URL) as redacted text; anything else as it is."""
    if isinstance(value, str) or type(value).__name__ == "URL":
        return redact_text(str(value))
    return value


def install_log_filter(logger_name: str = "httpx") -> None:
    """Add one ``RedactingFilter`` to ``logger_name`` (idempotent; call when a client is made)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())

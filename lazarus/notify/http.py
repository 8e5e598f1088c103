"""POST a JSON document to a notification endpoint and classify what went wrong.

Error messages name only the endpoint's scheme and host: the rest of a webhook URL is its
credential. An answer of 429 or 5xx, a timeout and a connection failure are transient (retried);
any other answer outside 2xx is permanent (a wrong URL or key does not heal by retrying).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from lazarus.notify.secrets import DeliveryError

# Connect timeout (seconds); the read timeout is the caller's.
CONNECT_TIMEOUT = 5.0
# Characters of an error answer's body kept in the message.
MAX_BODY = 300


def endpoint(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: safe to show."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def post_json(url: str, payload: dict[str, Any], timeout: float) -> requests.Response:
    """POST ``payload``; return the 2xx response or raise ``DeliveryError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("the configured URL is not an http(s) URL")
    where = endpoint(url)
    try:
        response = requests.post(url, json=payload, timeout=(CONNECT_TIMEOUT, timeout), allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError(f"{where} did not answer within {timeout:.0f}s", transient=True) from None
    except requests.ConnectionError:
        raise DeliveryError(f"could not connect to {where}", transient=True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"request to {where} failed: {type(exc).__name__}") from None
    if 200 <= response.status_code < 300:
        return response
    body = " ".join(response.text.split())[:MAX_BODY]
    transient = response.status_code == 429 or response.status_code >= 500
    raise DeliveryError(f"{where} answered HTTP {response.status_code}: {body}", transient=transient)

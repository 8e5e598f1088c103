"""E-mail notifications over SMTP (standard library ``smtplib``).

The server, port, security (STARTTLS, implicit TLS, or none) and default sender are operator
settings; a user name and password, when the server needs them, come from the operator's
default Secret (keys ``smtpUsername``, ``smtpPassword``). Server answers 4xx and connection
failures are transient; 5xx answers (unknown recipient, authentication refused) are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lazarus.notify.message import plain_text
from lazarus.notify.secrets import DeliveryError
from lazarus.notify.targets import Context, Target
from lazarus.outcome import Outcome
from lazarus.settings import Settings

USERNAME_KEY, PASSWORD_KEY = "smtpUsername", "smtpPassword"


def email_message(outcome: Outcome, recipients: list[str], sender: str, cluster: str = "") -> EmailMessage:
    """The e-mail for ``outcome``: the summary as plain text."""
    verdict = "passed" if outcome.success else "FAILED"
    message = EmailMessage()
    message["Subject"] = f"[Lazarus] {verdict}: restore test of backup {outcome.backup} ({outcome.source})"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="lazarus.io")
    message.set_content(plain_text(outcome, cluster))
    return message


def _credentials(context: Context) -> tuple[str, str] | None:
    """(user, password) from the default Secret; None when it names no user (no authentication)."""
    try:
        user = context.credential(None, USERNAME_KEY, "SMTP user")
    except DeliveryError as exc:
        if exc.transient:
            raise
        return None
    return user, context.credential(None, PASSWORD_KEY, "SMTP password")


def deliver(settings: Settings, message: EmailMessage, credentials: tuple[str, str] | None) -> None:
    """Hand ``message`` to the configured SMTP server; raise ``DeliveryError``."""
    if not settings.smtp_host:
        raise DeliveryError("no SMTP server configured (setting smtp_host)")
    where = f"SMTP server {settings.smtp_host}:{settings.smtp_port}"
    timeout = settings.notification_timeout
    try:
        if settings.smtp_security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with server:
            if settings.smtp_security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if credentials is not None:
                server.login(*credentials)
            refused = server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where} refused every recipient: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryError(f"{where} answered {exc.smtp_code}: {text}", transient=400 <= exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}", transient=True) from None
    if refused:
        raise DeliveryError(f"{where} refused recipients: {', '.join(sorted(refused))}")


def send(context: Context, target: Target, outcome: Outcome) -> str:
    """Send the e-mail; return what was done (raises ``DeliveryError``)."""
    recipients = [str(address) for address in target.config.get("to") or []]
    if not recipients:
        raise DeliveryError("no recipients: set email.to")
    sender = str(target.config.get("from") or context.settings.smtp_from)
    message = email_message(outcome, recipients, sender, context.settings.cluster_name)
    deliver(context.settings, message, _credentials(context))
    return f"e-mailed {len(recipients)} recipient(s)"

"""Email through an SMTP server; the Message-ID comes from the idempotency key, so a retry is recognisable."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
from email.message import EmailMessage
from typing import Any

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.templating import render, render_text

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    to = params.get("to")
    if not (isinstance(to, str) or (isinstance(to, list) and to)):
        return "an email action needs 'to' (an address or a list)"
    if not isinstance(params.get("subject"), str):
        return "an email action needs a 'subject'"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.variables
    settings = ctx.settings
    to = render(params["to"], variables)
    recipients = [to] if isinstance(to, str) else [str(t) for t in to]
    message = EmailMessage()
    message["From"] = render_text(str(params.get("from", settings.mail_from)), variables)
    message["To"] = ", ".join(recipients)
    message["Subject"] = render_text(params["subject"], variables)
    message["Message-ID"] = f"<{ctx.idempotency_key.replace(':', '.')}@trackwire>"
    message["X-Trackwire-Idempotency-Key"] = ctx.idempotency_key
    message.set_content(render_text(str(params.get("body", "{{ reason }}")), variables))
    host = str(params.get("host", settings.smtp_host))
    port = int(params.get("port", settings.smtp_port))

    connections: list[smtplib.SMTP] = []

    def send() -> None:
        with smtplib.SMTP(timeout=timeout) as smtp:
            connections.append(smtp)
            smtp.connect(host, port)
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)

    try:
        await asyncio.to_thread(send)
    except asyncio.CancelledError:
        # The executor's timeout: shut the connection down, so the thread blocked on it returns now.
        for smtp in connections:
            if smtp.sock is not None:
                with contextlib.suppress(OSError):
                    smtp.sock.shutdown(socket.SHUT_RDWR)
        raise
    except smtplib.SMTPResponseException as exc:
        raise ActionError(
            f"SMTP {host}:{port}: {exc.smtp_code} {exc.smtp_error!r}",
            retry=exc.smtp_code >= 400 and exc.smtp_code < 500,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ActionError(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}") from exc
    return f"mailed {', '.join(recipients)}"

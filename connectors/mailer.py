"""Plain SMTP for the warnings syncd sends (smtplib; the host is configured)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from connectors.config import SmtpSettings


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        assert settings.sender, "smtp.sender is required to send mail"
        self.settings = settings

    def send(self, to: list[str], subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg.set_content(body)
        with smtplib.SMTP(self.settings.host, self.settings.port, timeout=30) as smtp:
            if self.settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            smtp.send_message(msg)

"""Sending a message to one contact method: one sender per channel behind one interface.

    result = notify.send(method, Message(subject=..., text=...))

Every sender has a timeout and answers with a `SendResult` (sent or failed, with the provider's
answer) instead of raising, so callers record the outcome. Secrets (tokens, keys) are never put
into a result or a log line.
"""

from .base import Message, Sender, SendResult, send, sender_for

__all__ = ["Message", "SendResult", "Sender", "send", "sender_for"]

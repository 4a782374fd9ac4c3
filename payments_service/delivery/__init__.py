"""Outgoing events: the outbox stream, its relay into RQ, the queue, signing and sending.

Jobs already queued in Redis name `payments_service.delivery.deliver_event`, so that name stays here.
"""

from .job import deliver_event

__all__ = ["deliver_event"]

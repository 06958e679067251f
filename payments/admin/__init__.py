"""Payments in the back office: the review queue and intents, payouts, and configuration."""

from . import configuration, intents, settlement  # noqa: F401

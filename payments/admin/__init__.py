"""Payments in the back office: the review queue and intents, payouts, and configuration."""

from . import configuration, intents  # noqa: F401

"""Webhook errors, each with its problem code."""

from zentra.errors import Conflict


class EndpointDisabled(Conflict):
    code = "endpoint_disabled"
    title = "Endpoint disabled"

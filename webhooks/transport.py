"""An httpx transport that connects only to addresses already resolved and checked.

Letting httpx resolve the host again would open a window between the check and the
connection in which the name answers something else (DNS rebinding). Instead each request is
sent to one of the `Target`'s addresses, in the order the resolver gave them, while the URL's
host stays what the request names: the Host header comes from the original URL, and for https
the `sni_hostname` extension makes httpcore send that name in SNI and verify the certificate
against it, not against the IP.

Passing a transport also keeps httpx from picking up HTTP(S)_PROXY from the environment: a proxy
would resolve the name itself, out of reach of the check.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from .addresses import AddressRefused, Target


class PinnedTransport(httpx.HTTPTransport):
    def __init__(self, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        asked = (url.scheme, url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80))
        if asked != (self.target.scheme, self.target.host, self.target.port):
            # A redirect, or a URL read differently from the one checked: never sent anywhere.
            raise AddressRefused(f"{url.scheme}://{url.netloc.decode('ascii')} is not the checked "
                                 f"{self.target.scheme}://{self.target.host}:{self.target.port}")
        timeouts = dict(request.extensions.get("timeout", {}))
        budget = timeouts.get("connect")
        # One connect timeout for all the addresses together, as socket.create_connection would
        # spend it, so a name with many dead addresses cannot hold a worker for longer.
        deadline = None if budget is None else time.monotonic() + budget
        failure: httpx.TransportError | None = None
        for address in self.target.addresses:
            if deadline is not None:
                timeouts["connect"] = deadline - time.monotonic()
                if timeouts["connect"] <= 0:
                    break
            wire = httpx.Request(request.method, url.copy_with(host=address), headers=request.headers,
                                 stream=request.stream,
                                 extensions={**request.extensions, "timeout": timeouts,
                                             "sni_hostname": self.target.host})
            try:
                return super().handle_request(wire)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc  # nothing was sent; the next checked address may answer
        if failure is None:
            raise httpx.ConnectTimeout(f"no address of {self.target.host} answered in time", request=request)
        raise failure

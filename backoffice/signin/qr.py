"""QR codes as inline SVG: drawn here, so the enrolment page loads nothing from elsewhere and
needs no inline style (the Content-Security-Policy allows none)."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str) -> SafeString:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, border=4)
    svg = image.to_string(encoding="unicode")
    # Sized by the stylesheet (.zqr); the dark modules stay black on white in the dark theme too,
    # or a phone's camera cannot read them.
    svg = svg.replace("<svg ", '<svg class="zqr" role="img" aria-label="QR code of the authenticator set-up link" ',
                      1)
    # Markup of our own making: the data is drawn as path geometry, never written as text.
    return mark_safe(svg)  # noqa: S308

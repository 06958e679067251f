"""The "Evidence export" button of an account's, payment intent's or hold's admin page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from ..admin_exports import may_export
from ..selectors.exports import exportable_label

register = template.Library()


@register.simple_tag(takes_context=True)
def evidence_export_url(context: Any, obj: Any) -> str:
    """The new-export form for this object, when it can be exported and the user may; else ''."""
    request = context.get("request")
    object_id = str(getattr(obj, "pk", "") or "")
    if request is None or exportable_label(object_id) is None:
        return ""
    if not may_export(request.user, getattr(obj, "tenant_id", None)):
        return ""
    return f"{reverse('admin:backoffice_evidenceexport_add')}?{urlencode({'resource': object_id})}"

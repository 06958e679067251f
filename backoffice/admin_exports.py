"""Evidence exports in the admin: compliance reviewers, owners and operators ask for one about an
account, payment intent or hold (the "new export" form, also reached from those objects' pages),
and download it once a worker has built it. Every download is recorded, as through the API.

The form calls the same service as `POST /v1/evidence_exports`, so the admin and the API refuse
the same things (another tenant's id: not found, with an AccessDenial). Exports are never edited
or deleted here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from audit.actors import Actor
from tenants.admin_base import ReadOnlyInline, TenantScopedAdmin, deny, form_errors_from
from tenants.roles import EVIDENCE, OPERATE
from tenants.selectors import Scope, tenant_ids_for_user
from zentra.errors import ZentraError

from .models import EvidenceExport, EvidenceExportDownload
from .services.exports import evidence_export_download, evidence_export_request
from .templatetags.zentra import actor_name, idlink

# Who may ask for and download exports: compliance (EVIDENCE; owners hold it too) and operators.
EXPORT_PERMS = (EVIDENCE, OPERATE)


def export_tenant_ids(user: Any) -> set[str] | None:
    """The tenants whose exports the user may see and ask for (None: every tenant)."""
    if user.is_superuser:
        return None
    return set().union(*(tenant_ids_for_user(user, perm) for perm in EXPORT_PERMS))


def may_export(user: Any, tenant_id: str | None = None) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    ids = export_tenant_ids(user)
    return ids is None or (tenant_id in ids if tenant_id else bool(ids))


class ExportRequestForm(forms.Form):
    resource = forms.CharField(max_length=40, help_text="An account (acct_...), payment intent (pi_...) or hold "
                                                        "(hold_...) id.",
                               widget=forms.TextInput(attrs={"size": 40, "autofocus": True}))
    period_from = forms.DateTimeField(label="From (UTC)", required=False,
                                      widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                      help_text="Inclusive. Empty: since the resource began.")
    period_to = forms.DateTimeField(label="To (UTC)", required=False,
                                    widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                    help_text="Exclusive, not in the future. Empty: now.")


class DownloadInline(ReadOnlyInline):
    model = EvidenceExportDownload
    fields = readonly_fields = ("created_at", "actor_shown", "channel", "request_link", "client_address", "sha256")
    show_change_link = False
    verbose_name = "download"
    verbose_name_plural = "downloads (each one is evidence)"

    @admin.display(description="who")
    def actor_shown(self, obj: EvidenceExportDownload) -> str:
        return f"{actor_name(obj.actor)} ({obj.actor})"

    @admin.display(description="request")
    def request_link(self, obj: EvidenceExportDownload) -> str:
        return idlink(obj.request_id) if obj.request_id else "—"


@admin.register(EvidenceExport)
class EvidenceExportAdmin(TenantScopedAdmin):
    view_perm = EVIDENCE
    add_perm = EVIDENCE
    # No "created at" column: ids sort by time, the date bar above the list filters by it, and the
    # period's end is the moment of asking unless one was given; status and the zip link stay in view.
    list_display = ["id", "resource_link", "period", "status", "sha256_short", "size_shown", "requested_by_name",
                    "download_link"]
    list_display_links = ["id"]
    list_filter = ["status"]
    search_fields = ["=id", "=resource", "=sha256"]
    date_hierarchy = "created_at"
    list_per_page = 50
    fields = readonly_fields = ("id", "resource_link", "period", "status", "requested_by_name", "request_link",
                                "created_at", "completed_at", "sha256", "size_shown", "kid", "files_table",
                                "failure_reason")
    inlines = [DownloadInline]
    change_form_template = "admin/backoffice/evidenceexport/change_form.html"

    # Compliance and operators alike; the base class asks for one permission at a time.
    def allowed_tenant_ids(self, request, perm: str) -> set[str] | None:
        return export_tenant_ids(request.user)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("archive")

    def has_change_permission(self, request, obj=None):
        return False

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description="resource", ordering="resource")
    def resource_link(self, obj: EvidenceExport) -> str:
        return idlink(obj.resource)

    @admin.display(description="period (UTC)")
    def period(self, obj: EvidenceExport) -> str:
        since = f"{obj.period_from:%Y-%m-%d\u00a0%H:%M}" if obj.period_from else "start"
        return f"{since} → {obj.period_to:%Y-%m-%d\u00a0%H:%M}"

    @admin.display(description="sha256")
    def sha256_short(self, obj: EvidenceExport) -> str:
        return format_html('<code title="{}">{}…</code>', obj.sha256, obj.sha256[:10]) if obj.sha256 else "—"

    @admin.display(description="size", ordering="size")
    def size_shown(self, obj: EvidenceExport) -> str:
        if obj.size is None:
            return "—"
        # No-break spaces: a number and its unit stay on one line.
        return f"{obj.size / 1024:.1f}\u00a0KiB" if obj.size >= 1024 else f"{obj.size}\u00a0B"

    @admin.display(description="request")
    def request_link(self, obj: EvidenceExport) -> str:
        return idlink(obj.request_id) if obj.request_id else "—"

    @admin.display(description="files (sha256 in manifest.json)")
    def files_table(self, obj: EvidenceExport) -> str:
        if not obj.files:
            return "—"
        return format_html("<table>{}</table>", format_html_join(
            "", "<tr><td>{}</td><td><code>{}</code></td></tr>", sorted(obj.files.items())))

    @admin.display(description="")
    def download_link(self, obj: EvidenceExport) -> str:
        if obj.status != EvidenceExport.READY:
            return "—"
        return format_html('<a href="{}" title="download the zip">zip</a>',
                           reverse("admin:backoffice_evidenceexport_download", args=[obj.pk]))

    # --- asking for one, downloading it ----------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        download = path("<path:object_id>/download/", self.admin_site.admin_view(self.download_view),
                        name="backoffice_evidenceexport_download")
        return [download, *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Not the model's form: the service decides the tenant (the resource's) and writes the row."""
        if not self.has_add_permission(request):
            deny(request, action="admin:add backoffice.evidenceexport", reason="the role may not ask for exports")
            raise PermissionDenied
        form = ExportRequestForm(request.POST or None, initial={"resource": request.GET.get("resource", "")})
        if request.method == "POST" and form.is_valid():
            ids = export_tenant_ids(request.user)
            actor = Actor.for_user(request.user)
            scope = Scope(actor=actor, tenant_ids=None if ids is None else frozenset(ids), user=request.user)
            try:
                export = evidence_export_request(
                    scope=scope, resource=form.cleaned_data["resource"].strip(),
                    period_from=form.cleaned_data["period_from"], period_to=form.cleaned_data["period_to"],
                    actor=actor, action="admin:add backoffice.evidenceexport")
            except ZentraError as exc:
                form_errors_from(form, _on_form_fields(exc))
            else:
                self.message_user(request, f"Export {export.id} of {export.resource} is building; it is ready to "
                                           "download in a few seconds (reload this page).", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:backoffice_evidenceexport_change", args=[export.pk]))
        context = {**self.admin_site.each_context(request), "title": "New evidence export", "form": form,
                   "opts": self.model._meta, "has_view_permission": True}
        return TemplateResponse(request, "admin/backoffice/evidenceexport/request.html", context)

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        export = self.get_object(request, unquote(object_id))
        if export is None or not self.has_view_permission(request, export):
            raise Http404("No such evidence export")
        try:
            archive = evidence_export_download(export=export, actor=Actor.for_user(request.user),
                                               channel=EvidenceExportDownload.ADMIN)
        except ZentraError as exc:
            self.message_user(request, f"{exc.detail} ({exc.code})", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:backoffice_evidenceexport_change", args=[export.pk]))
        response = HttpResponse(archive, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export.pk}.zip"'
        return response


def _on_form_fields(exc: ZentraError) -> ZentraError:
    """The API names `from` and `to`; the form names them period_from and period_to."""
    names = {"from": "period_from", "to": "period_to"}
    exc.errors = [{**error, "field": names.get(error.get("field") or "", error.get("field"))}
                  for error in exc.errors or []]
    return exc

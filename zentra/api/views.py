"""The base of every tenant-scoped API view: auth, idempotency, object lookup with evidence."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from rest_framework.views import APIView

from audit.services import access_denial_record
from zentra.errors import NotFound, ValidationFailed

from .idempotency import (HEADER, IdempotentReplay, claim_activate, claim_deactivate, idempotency_begin,
                          idempotency_finish)
from .pagination import ListEnvelopeSchema, list_body, paginate


class TenantAPIView(APIView):
    """request.tenant is the API key's tenant; every POST passes the Idempotency-Key gate."""

    _idempotency_claim = None
    # Read by the OpenAPI generator only: lists answer {"object": "list", "data", "has_more"}.
    pagination_class = ListEnvelopeSchema

    @property
    def tenant(self):
        return self.request.tenant

    @property
    def actor(self):
        return self.request.user.actor

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.refuse_nul_characters(request)
        if request.method == "POST":
            self._idempotency_claim = idempotency_begin(
                tenant_id=request.tenant.id, raw_key=request.headers.get(HEADER), method=request.method,
                path=request.path, body=request.body, request_id=getattr(request, "request_id", ""),
            )
            request._request.idempotency_key = self._idempotency_claim.key
            self._claim_token = claim_activate(self._idempotency_claim)

    @staticmethod
    def refuse_nul_characters(request) -> None:
        """PostgreSQL text cannot hold NUL: a query or an id containing one would fail in the
        database as a 500. No object's id has one (404), no filter value may (400)."""
        if "\x00" in request.path:
            raise NotFound(f"No such endpoint or object: {request.path.replace(chr(0), '')}")
        bad = sorted({name for name, values in request.query_params.lists()
                      if "\x00" in name or any("\x00" in value for value in values)})
        if bad:
            names = [name.replace("\x00", "") for name in bad]
            raise ValidationFailed(f"{', '.join(names)}: NUL characters are not allowed",
                                   errors=[{"field": name, "message": "NUL characters are not allowed."}
                                           for name in names])

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            self.request._request.idempotent_replay = True
            self.request._request.idempotency_key = exc.record.key
            return exc.response()
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency_claim is not None:
            claim_deactivate(self._claim_token)
            idempotency_finish(self._idempotency_claim, response)
            self._idempotency_claim = None
        return response

    # --- reads -----------------------------------------------------------------------------

    def tenant_object(self, queryset: QuerySet, object_id: str, *, label: str) -> Model:
        """The tenant's object, or 404. An object of another tenant also answers 404,
        exactly as if it did not exist, and leaves an AccessDenial."""
        obj = queryset.filter(tenant=self.tenant, pk=object_id).first()
        if obj is not None:
            return obj
        self.deny_if_foreign(queryset.model, object_id)
        raise NotFound(f"No such {label}: {object_id}")

    def deny_if_foreign(self, model: type[Model], object_id: str) -> None:
        owner = model._default_manager.filter(pk=object_id).values_list("tenant_id", flat=True).first()
        if owner is not None and owner != self.tenant.id:
            access_denial_record(
                actor=self.actor, tenant_id=self.tenant.id, role=self.request.auth.scope,
                action=f"{self.request.method} {self.request.path}", target=object_id, target_tenant_id=owner,
                reason="object belongs to another tenant", request_id=getattr(self.request, "request_id", ""))

    def list_response(self, queryset: QuerySet, serializer_class, *, order_field: str = "id",
                      cursor_queryset: QuerySet | None = None):
        from rest_framework.response import Response

        if cursor_queryset is None and order_field == "id":
            # Ids order all of the tenant's rows, so a cursor is a position among them, not a member
            # of the filtered set: the last object of a page may leave the filter (an account
            # unfrozen) before the next page is asked for. (Per-parent orderings such as an
            # entry's sequence keep resolving the cursor in the list itself.)
            cursor_queryset = queryset.model._default_manager.filter(tenant=self.tenant)
        page, has_more = paginate(self.request, queryset, order_field=order_field, cursor_queryset=cursor_queryset)
        return Response(list_body(serializer_class(page, many=True).data, has_more))

    def choice_filter(self, queryset: QuerySet, param: str, choices, field: str | None = None) -> QuerySet:
        value = self.request.query_params.get(param)
        if value is None:
            return queryset
        if value not in choices:
            raise ValidationFailed(f"{param}: unknown value {value!r}",
                                   errors=[{"field": param, "message": f"Must be one of {', '.join(sorted(choices))}."}])
        return queryset.filter(**{field or param: value})

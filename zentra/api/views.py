"""The base of every tenant-scoped API view: auth, idempotency, the tenant-scoped lookup, lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import Actor
from tenants.models import Tenant
from tenants.selectors import Scope, tenant_object
from zentra.db.before_commit import before_commit_hook
from zentra.errors import NotFound, ValidationFailed

from .idempotency import HEADER, Claim, IdempotentReplay, idempotency_answer, idempotency_begin, idempotency_finish
from .pagination import list_body, paginate

M = TypeVar("M", bound=Model)
R = TypeVar("R")


class TenantAPIView(APIView):
    """request.tenant is the API key's tenant; every POST passes the Idempotency-Key gate."""

    requires_idempotency_key = True
    _idempotency_claim: Claim | None = None

    @property
    def tenant(self) -> Tenant:
        tenant: Tenant = self.request.tenant  # type: ignore[attr-defined]
        return tenant

    @property
    def actor(self) -> Actor:
        actor: Actor = self.request.user.actor  # type: ignore[union-attr]
        return actor

    @property
    def scope(self) -> Scope:
        return Scope.of_tenant(self.tenant.id, self.actor, role=self.request.auth.scope)  # type: ignore[union-attr]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # DRF looks for the handler only after `initial`: a POST to a read-only resource would
        # meet the Idempotency-Key gate first and answer 400 instead of 405 with its Allow header.
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            self.http_method_not_allowed(request, *args, **kwargs)
        self.refuse_nul_characters(request)
        if request.method == "POST":
            self._idempotency_claim = idempotency_begin(
                tenant_id=self.tenant.id, raw_key=request.headers.get(HEADER), method=request.method,
                path=request.path, body=request.body, request_id=getattr(request, "request_id", ""),
            )
            request._request.idempotency_key = self._idempotency_claim.key  # type: ignore[attr-defined]

    @staticmethod
    def refuse_nul_characters(request: Request) -> None:
        """PostgreSQL text cannot hold NUL: a query or an id containing one would fail in the
        database as a 500. No object's id has one (404), no filter value may (400); and no
        query parameter may come twice (400)."""
        if "\x00" in request.path:
            raise NotFound(f"No such endpoint or object: {request.path.replace(chr(0), '')}")
        bad = sorted({name for name, values in request.query_params.lists()
                      if "\x00" in name or any("\x00" in value for value in values)})
        if bad:
            names = [name.replace("\x00", "") for name in bad]
            raise ValidationFailed(f"{', '.join(names)}: NUL characters are not allowed",
                                   errors=[{"field": name, "message": "NUL characters are not allowed."}
                                           for name in names])
        # Every query parameter of the API holds one value: given twice, which one counts would
        # be a guess (Django takes the last, so `?limit=abc&limit=` would pass as no limit).
        repeated = sorted(name for name, values in request.query_params.lists() if len(values) > 1)
        if repeated:
            raise ValidationFailed(f"{', '.join(repeated)}: given more than once",
                                   errors=[{"field": name, "message": "Give it once."} for name in repeated])

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, IdempotentReplay):
            self.request._request.idempotent_replay = True  # type: ignore[attr-defined]
            self.request._request.idempotency_key = exc.record.key  # type: ignore[attr-defined]
            return exc.response()
        return super().handle_exception(exc)

    def answer_with_change(self, status_code: int, render: Callable[[R], Mapping[str, Any]],
                           change: Callable[[], R]) -> Response:
        """Run `change` (a service call) with the answer stored under the request's
        Idempotency-Key inside the change's own transaction (zentra/db/before_commit.py): one
        commit for both, instead of one each. A service that hands over no result is answered
        as before, after its commit."""
        claim, stored = self._idempotency_claim, {}

        def store(result: R) -> None:
            stored["body"] = dict(render(result))
            if claim is not None:
                idempotency_answer(claim, status_code, stored["body"])

        with before_commit_hook(store):
            result = change()
        if "body" not in stored:
            return Response(render(result), status=status_code)
        self._idempotency_claim = None  # answered, with the change
        return Response(stored["body"], status=status_code)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency_claim is not None:
            idempotency_finish(self._idempotency_claim, response)
            self._idempotency_claim = None
        return response

    # --- reads -----------------------------------------------------------------------------

    def tenant_object(self, source: type[M] | QuerySet[M], object_id: str, *, label: str,
                      field: str | None = None) -> M:
        """The tenant's object, or 404; another tenant's answers the same and leaves evidence."""
        return tenant_object(source, object_id, scope=self.scope, label=label, field=field,
                             action=f"{self.request.method} {self.request.path}")

    def list_response(self, queryset: QuerySet[M], render: Callable[[M], Mapping[str, Any]], *,
                      order_field: str = "id", cursor_queryset: QuerySet[M] | None = None) -> Response:
        if cursor_queryset is None and order_field == "id":
            # Ids order all of the tenant's rows, so a cursor is a position among them, not a member
            # of the filtered set: the last object of a page may leave the filter (an account
            # unfrozen) before the next page is asked for. (Per-parent orderings such as an
            # entry's sequence keep resolving the cursor in the list itself.)
            cursor_queryset = queryset.model._default_manager.filter(tenant=self.tenant)
        page, has_more = paginate(self.request, queryset, order_field=order_field, cursor_queryset=cursor_queryset)
        return Response(list_body([render(obj) for obj in page], has_more))

    def choice_filter(self, queryset: QuerySet[M], param: str, choices: Any, field: str | None = None) -> QuerySet[M]:
        value = self.choice_param(param, choices)
        return queryset if value is None else queryset.filter(**{field or param: value})

    def choice_param(self, param: str, choices: Any) -> str | None:
        """A filter's value, which must be one of `choices` (400 otherwise), or None."""
        value = self.request.query_params.get(param)
        if value is None:
            return None
        if value not in choices:
            allowed = ", ".join(sorted(choices))
            raise ValidationFailed(f"{param}: unknown value {value!r}",
                                   errors=[{"field": param, "message": f"Must be one of {allowed}."}])
        return value

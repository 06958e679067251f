"""Operators in the admin act as themselves: history rows name them."""

from .actors import Actor, acting_as


class OperatorActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            with acting_as(Actor.for_user(user)):
                return self.get_response(request)
        return self.get_response(request)

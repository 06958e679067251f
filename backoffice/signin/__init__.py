"""Staff sign-in to the back office: the lockout after repeated failures (django-axes), the
second factor (django-otp: an authenticator app and one-time recovery codes), and the pages
that go with them. The writes are in backoffice/services/staff_logins.py."""

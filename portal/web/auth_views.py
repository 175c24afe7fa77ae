"""Signing in and out, invitations and password resets: Django's own views, the portal's templates.

Sign-in goes through `authenticate()`, so django-axes counts failures and locks out (flowhq.lockout)
as for the admin; passwords chosen from an invitation or a reset pass AUTH_PASSWORD_VALIDATORS;
emails go through EMAIL_BACKEND (flowhq/settings.py).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpResponse
from django.urls import reverse_lazy

from portal.invitations import invitation_tokens
from portal.web.forms import EmailSignInForm, PortalPasswordResetForm
from portal.web.throttle import over_limit

BACKEND = "django.contrib.auth.backends.ModelBackend"


class SignIn(auth_views.LoginView):
    form_class = EmailSignInForm
    template_name = "portal/sign_in.html"
    redirect_authenticated_user = True
    next_page = "portal:home"


class SignOut(auth_views.LogoutView):
    next_page = "portal:sign-in"


class PasswordReset(auth_views.PasswordResetView):
    form_class = PortalPasswordResetForm
    template_name = "portal/password_reset.html"
    email_template_name = "portal/email/password_reset.txt"
    subject_template_name = "portal/email/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-sent")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        """At most PORTAL_RESET_RATE reset emails per address asked for, and per client address."""
        rate = settings.PORTAL_RESET_RATE
        by_email = over_limit(scope="reset-email", key=form.cleaned_data["email"], rate=rate)
        by_client = over_limit(scope="reset-client", key=self.request.META.get("REMOTE_ADDR", ""), rate=rate)
        if by_email or by_client:
            form.add_error(None, "Too many reset requests: try again later.")
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return super().form_valid(form)


class PasswordResetSent(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_sent.html"


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_set.html"
    success_url = reverse_lazy("portal:home")
    post_reset_login = True
    post_reset_login_backend = BACKEND
    extra_context = {"title": "Choose a new password"}


class InvitationAccept(auth_views.PasswordResetConfirmView):
    """The invitation link: choose a password, and be signed in."""

    template_name = "portal/password_set.html"
    token_generator = invitation_tokens
    success_url = reverse_lazy("portal:home")
    post_reset_login = True
    post_reset_login_backend = BACKEND
    extra_context = {"title": "Welcome: choose your password", "invitation": True}

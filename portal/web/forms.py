"""Forms of the portal web app. Validation that the API also does is the API's own code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.models import User

from flowhq.errors import ValidationFailed
from portal.invitations import member_account
from portal.serializers import SetupRequestIn
from tenants.models import Direction, MatchKind, MessageSource, MessageStatus, ReplyTemplate
from tenants.templates import validate_template


class EmailSignInForm(AuthenticationForm):
    """Django's sign-in form, by email: the address is turned into its account's user name, so
    ModelBackend, django-axes' counting and lockout (flowhq.lockout) and the password hashers all
    work as they do for the admin."""

    username = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password (the password is case-sensitive).",
    }

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        if email:
            account = member_account(email=email)
            # An unknown address is tried as it is: it fails, and counts, like a wrong password.
            self.cleaned_data["username"] = account.get_username() if account is not None else email
        return super().clean() or {}


class PortalPasswordResetForm(PasswordResetForm):
    """Django's reset form; an invited member who never chose a password may use it too."""

    def get_users(self, email: str) -> Iterator[User]:
        for user in get_user_model()._default_manager.filter(email__iexact=email, is_active=True):
            if not (user.is_staff or user.is_superuser):
                yield user


class SetupRequestForm(forms.Form):
    """What the API's SetupRequestIn accepts (phone digits, a business name), as a form."""

    business_name = forms.CharField(max_length=200)
    phone = forms.CharField(max_length=32, help_text="The WhatsApp number to link, e.g. +44 20 7946 0000.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        checked = SetupRequestIn(data=cleaned)
        if not checked.is_valid():
            for field, problems in checked.errors.items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, str(problem))
            return cleaned
        return dict(checked.validated_data)


if TYPE_CHECKING:
    _TemplateModelForm = forms.ModelForm[ReplyTemplate]
else:
    _TemplateModelForm = forms.ModelForm


class TemplateForm(_TemplateModelForm):
    """A reply template, refused for what the API refuses (tenants.templates.validate_template)."""

    class Meta:
        model = ReplyTemplate
        fields = ["match", "pattern", "body", "priority", "enabled"]
        widgets = {"body": forms.Textarea(attrs={"rows": 3})}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            validate_template(match=cleaned["match"], pattern=cleaned.get("pattern") or "", body=cleaned["body"])
        except ValidationFailed as exc:
            for field, problems in exc.details.items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, problem)
        return cleaned


def _any(choices: Any) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class MessageFilterForm(forms.Form):
    """The message log's filters; an empty value means "any"."""

    chat = forms.CharField(max_length=128, required=False)
    direction = forms.ChoiceField(choices=_any(Direction.choices), required=False)
    status = forms.ChoiceField(choices=_any(MessageStatus.choices), required=False)
    source = forms.ChoiceField(choices=_any(MessageSource.choices), required=False)

    def filters(self) -> dict[str, str]:
        """The valid filters that are set (an invalid form filters nothing it could not read)."""
        if not self.is_valid():
            return {}
        return {key: value.strip() for key, value in self.cleaned_data.items() if value and value.strip()}


MATCH_HELP = {
    MatchKind.EXACT: "the whole message, ignoring case",
    MatchKind.KEYWORD: "any of these comma-separated words",
    MatchKind.REGEX: "a regular expression",
    MatchKind.DEFAULT: "anything no other template answers",
}

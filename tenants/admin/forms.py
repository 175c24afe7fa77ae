"""The admin's forms: the API's rules for templates, members and tenants, and the
formset saves that send every write through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.models import BaseInlineFormSet
from django.utils.text import slugify

from flowhq.errors import ValidationFailed
from tenants import services
from tenants.models import PortalMembership, ReplyTemplate, Tenant
from tenants.templates import validate_template

TEMPLATE_FIELDS = ("match", "pattern", "body", "priority", "enabled")
TENANT_FIELDS = ("name", "slug", "rate_limit_per_minute")
# The message policy (tenants/policy.py), its own fieldset on the tenant page.
POLICY_FIELDS = ("reply_in_groups", "reply_to_media")


class ReplyTemplateForm(forms.ModelForm[ReplyTemplate]):
    """Refuses what the API refuses (tenants.templates.validate_template), next to the field."""

    class Meta:
        model = ReplyTemplate
        fields = list(TEMPLATE_FIELDS)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.instance.pk and not self.has_changed():
            return cleaned
        if any(name in self.errors for name in ("match", "pattern", "body")):
            return cleaned
        try:
            validate_template(
                match=cleaned.get("match") or "", pattern=cleaned.get("pattern") or "", body=cleaned.get("body") or ""
            )
        except ValidationFailed as exc:
            for field, problems in (exc.details or {"__all__": [exc.message]}).items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, problem)
        return cleaned


def save_template_formset(formset: BaseInlineFormSet[ReplyTemplate, Tenant, Any]) -> None:
    """Apply a tenant page's template edits through the services, which validate and tell the running bot."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = set(formset.deleted_forms)
    for form in formset.initial_forms:
        template = form.instance
        if template.pk is None:
            continue
        if form in deleted:
            services.template_delete(template=template)
            formset.deleted_objects.append(template)
        elif form.has_changed():
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in TEMPLATE_FIELDS}
            services.template_update(template=template, **changes)
            formset.changed_objects.append((template, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and form not in deleted:
            created = services.template_create(
                tenant=formset.instance, **{name: form.cleaned_data[name] for name in TEMPLATE_FIELDS}
            )
            form.instance = created
            formset.new_objects.append(created)



class MembershipForm(forms.ModelForm[PortalMembership]):
    class Meta:
        model = PortalMembership
        fields = ["email"]

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip()
        other = (
            PortalMembership.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
            .select_related("tenant").first()
        )
        if other is not None:
            raise forms.ValidationError(f"{email} is already a member of {other.tenant}.")
        return email


class MembershipFormSet(BaseInlineFormSet[PortalMembership, Tenant, forms.ModelForm[PortalMembership]]):
    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            email = data.get("email", "")
            if not email or data.get("DELETE"):
                continue
            if email.casefold() in seen:
                raise forms.ValidationError(f"{email} is listed twice.")
            seen.add(email.casefold())


def save_membership_formset(formset: BaseInlineFormSet[PortalMembership, Tenant, Any]) -> None:
    """New members are linked by the membership service (one tenant per email, case-insensitive)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = set(formset.deleted_forms)
    for form in formset.initial_forms:
        if form.instance.pk is None:
            continue
        if form in deleted:
            form.instance.delete()
            formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            form.save()
            formset.changed_objects.append((form.instance, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and form not in deleted:
            membership, _ = services.membership_add(tenant=formset.instance, email=form.cleaned_data["email"])
            if form.cleaned_data.get("can_edit_templates"):
                services.membership_grant(membership=membership, can_edit_templates=True)
            form.instance = membership
            formset.new_objects.append(membership)



class TenantForm(forms.ModelForm[Tenant]):
    class Meta:
        model = Tenant
        fields = [*TENANT_FIELDS, *POLICY_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk and "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Leave empty to derive it from the name."

    def clean_slug(self) -> str:
        # The services refuse a slug with no letter or digit ("-"): say so on the form, not with a 500.
        slug = self.cleaned_data.get("slug") or ""
        if slug and not slugify(slug):
            raise forms.ValidationError("A slug needs a letter or a digit.")
        return slug


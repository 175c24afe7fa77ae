"""/portal/: the tenant portal web app (the JSON portal API is /api/portal/, portal/urls.py)."""

from django.urls import path, re_path

from flowhq.api.urls import CHAT
from portal.web import auth_views, views

app_name = "portal"
TEMPLATE = r"(?P<template_id>[0-9]{1,18})"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", auth_views.SignIn.as_view(), name="sign-in"),
    path("sign-out/", auth_views.SignOut.as_view(), name="sign-out"),
    path("password-reset/", auth_views.PasswordReset.as_view(), name="password-reset"),
    path("password-reset/sent/", auth_views.PasswordResetSent.as_view(), name="password-reset-sent"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirm.as_view(),
         name="password-reset-confirm"),
    path("invitation/<uidb64>/<token>/", auth_views.InvitationAccept.as_view(), name="invitation"),
    path("setup-request/", views.setup_request, name="setup-request"),
    path("new-qr/", views.new_qr, name="new-qr"),
    path("unlink/", views.whatsapp_logout, name="unlink"),
    re_path(rf"^chats/{CHAT}/resume/$", views.chat_resume, name="chat-resume"),
    path("messages/", views.message_log, name="messages"),
    path("templates/", views.template_list, name="templates"),
    path("templates/new/", views.template_create, name="template-new"),
    re_path(rf"^templates/{TEMPLATE}/$", views.template_edit, name="template-edit"),
    re_path(rf"^templates/{TEMPLATE}/delete/$", views.template_delete, name="template-delete"),
    path("events/", views.event_stream, name="events"),
]

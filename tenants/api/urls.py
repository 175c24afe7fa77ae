from flowhq.api.urls import CHAT, ID, route
from tenants.api import chat_views, template_views, views

urlpatterns = [
    route("tenants", views.TenantListCreate.as_view(), "tenant-list"),
    route(f"tenants/{ID}", views.TenantDetail.as_view(), "tenant-detail"),
    route(f"tenants/{ID}/members", views.MemberListCreate.as_view(), "tenant-members"),
    route(f"tenants/{ID}/members/(?P<email>[^/]+)", views.MemberDelete.as_view(), "tenant-member"),
    route(f"tenants/{ID}/qr", views.TenantQr.as_view(), "tenant-qr"),
    route(f"tenants/{ID}/logs", views.TenantLogs.as_view(), "tenant-logs"),
    route(f"tenants/{ID}/chats/paused", chat_views.ChatPauseList.as_view(), "tenant-chat-pauses"),
    route(f"tenants/{ID}/chats/{CHAT}/pause", chat_views.ChatPauseDetail.as_view(), "tenant-chat-pause"),
    route(f"tenants/{ID}/templates", template_views.TemplateListCreate.as_view(), "tenant-templates"),
    route(f"tenants/{ID}/templates/(?P<template_id>[0-9]{{1,18}})", template_views.TemplateDetail.as_view(),
          "tenant-template"),
]

from django.urls import path, re_path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    re_path(r"^tenants/(?P<tenant_id>[0-9]{1,18})/(?P<verb>[a-z-]{1,20})/$", views.tenant_action,
            name="tenant-action"),
]

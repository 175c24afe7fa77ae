from flowhq.api.urls import ID, route
from tenants.api import views

urlpatterns = [
    route("tenants", views.TenantListCreate.as_view(), "tenant-list"),
    route(f"tenants/{ID}", views.TenantDetail.as_view(), "tenant-detail"),
    route(f"tenants/{ID}/members", views.MemberListCreate.as_view(), "tenant-members"),
    route(f"tenants/{ID}/members/(?P<email>[^/]+)", views.MemberDelete.as_view(), "tenant-member"),
]

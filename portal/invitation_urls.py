from flowhq.api.urls import ID, route
from portal.invitation_api import InvitationCreate

urlpatterns = [
    route(f"tenants/{ID}/invitations", InvitationCreate.as_view(), "tenant-invitations"),
]

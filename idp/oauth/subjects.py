"""Subject identifiers (OpenID Connect Core 8): the ``sub`` a relying system sees.

``public``: the user's own sub, the same for every system.  ``pairwise``: a keyed hash of the
client's sector and that sub, so systems of different sectors (departments) cannot join their
users by ``sub``; systems of one sector share it.  The ID token, userinfo, the access token,
introspection and the logout token all ask here.
"""

from __future__ import annotations

from ..models import Client, User
from ..services.identity import pii

PAIRWISE = "pairwise"
PUBLIC = "public"


def is_pairwise(client: Client | None) -> bool:
    return client is not None and client.subject_type == PAIRWISE and bool(client.sector_identifier)


def subject_for(client: Client | None, user: User) -> str:
    if not is_pairwise(client):
        return user.sub
    return pii.cipher().pairwise_subject(client.sector_identifier, user.sub)

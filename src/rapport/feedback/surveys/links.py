"""Signed survey links: the token names an invitation and is signed with the application's
secret, so a changed or made-up token is refused without a database lookup. Expiry and
"answered once" live on the invitation row, which the token cannot change."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "rapport.feedback.survey-link"


class ForgedLink(Exception):
    """The token was not signed by this installation."""


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def sign(invitation_id: str, *, secret: str) -> str:
    return str(_serializer(secret).dumps(invitation_id))


def verify(token: str, *, secret: str) -> str:
    """The invitation id inside ``token``; :class:`ForgedLink` when the signature is wrong."""
    try:
        value = _serializer(secret).loads(token)
    except BadSignature as error:
        raise ForgedLink(str(error)) from error
    if not isinstance(value, str):
        raise ForgedLink("not an invitation")
    return value


def path(invitation_id: str, *, secret: str) -> str:
    """The public page's path for this invitation."""
    return f"/s/{sign(invitation_id, secret=secret)}"


def url(invitation_id: str, *, secret: str, base_url: str) -> str:
    """The public page's full address for this invitation, as a message carries it
    (``base_url``: where customers reach this installation, such as https://shop.example)."""
    return f"{base_url.rstrip('/')}{path(invitation_id, secret=secret)}"

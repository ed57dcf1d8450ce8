"""Bearer tokens for API clients: signed and time-limited, nothing stored server-side."""

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SALT = "mealroll.api-token"


def issue(secret: str, user_id: int) -> str:
    return URLSafeTimedSerializer(secret, salt=_SALT).dumps({"uid": user_id})


def read(secret: str, token: str, *, max_age: int) -> int | None:
    """The user id inside a valid token; None when forged, malformed or expired."""
    try:
        payload = URLSafeTimedSerializer(secret, salt=_SALT).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    uid = payload.get("uid") if isinstance(payload, dict) else None
    return uid if isinstance(uid, int) else None

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from api.deps import CurrentUser, DbSession, Offset
from api.schemas import history_read
from registry import schools

router = APIRouter(prefix="/api/schools", tags=["schools"])


def school_read(school: schools.School) -> dict[str, Any]:
    return {**school.fields(), "org_unit": school.org_unit.as_ref()}


@router.get("")
def list_schools(session: DbSession, user: CurrentUser, q: str | None = Query(None, max_length=50),
                 limit: int = Query(100, ge=1, le=500), offset: Offset = 0) -> dict[str, Any]:
    rows, total = schools.list_schools(session, actor=user, q=q, limit=limit, offset=offset)
    return {"items": [school_read(s) for s in rows], "total": total}


@router.get("/{code}")
def get_school(code: str, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    return school_read(schools.get_school(session, actor=user, code=code))


@router.patch("/{code}")
def update_school(code: str, session: DbSession, user: CurrentUser,
                  changes: Annotated[dict[str, Any], Body(examples=[{"phone": "0855-8880001"}])],
                  reason: str | None = Query(None, max_length=200),
                  meal_model_from: str | None = Query(None, description="YYYY-MM a new meal model holds from; "
                                                                        "default this month")) -> dict[str, Any]:
    school = schools.update_school(session, actor=user, code=code, changes=changes, reason=reason,
                                   meal_model_from=meal_model_from)
    session.commit()
    return school_read(school)


@router.get("/{code}/history")
def history(code: str, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    entries = schools.school_history(session, actor=user, code=code)
    return {"items": [history_read(e) for e in entries], "total": len(entries)}

from typing import Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DbSession
from api.schemas import history_read, student_read
from registry import students
from registry.access import may_see_full_id
from registry.code_tables import load_code_tables
from registry.errors import NotFound

router = APIRouter(prefix="/api", tags=["students"])


@router.get("/students")
def list_students(session: DbSession, user: CurrentUser, q: str | None = Query(None, max_length=50),
                  status: str | None = Query(None, max_length=20), limit: int = Query(50, ge=1, le=500),
                  offset: int = Query(0, ge=0)) -> dict[str, Any]:
    rows, total = students.search(session, actor=user, q=q, status=status, limit=limit, offset=offset)
    return {"items": [student_read(s, user) for s in rows], "total": total}


@router.get("/students/{student_id}")
def get_student(student_id: int, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    return student_read(students.get_student(session, actor=user, student_id=student_id), user)


@router.get("/students/{student_id}/history")
def student_history(student_id: int, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    student = students.get_student(session, actor=user, student_id=student_id)
    entries = students.history(session, student=student)
    mask = not may_see_full_id(user, student.school)
    return {"items": [history_read(e, mask=mask) for e in entries], "total": len(entries)}


@router.get("/code-tables/{name}")
def code_table(name: str, user: CurrentUser) -> dict[str, Any]:
    tables = load_code_tables()
    if name not in tables.names():
        raise NotFound(f"没有代码表 {name}")
    return {"items": [{"code": i.code, "label": i.label} for i in tables.table(name)]}

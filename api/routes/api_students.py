from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response, UploadFile

from api.deps import CurrentUser, DbSession, Offset, RowId
from api.schemas import findings, history_read, local_today, student_read
from registry import county_policy as county_policy_service
from registry import student_lists, students
from registry.access import may_see_full_id
from registry.code_tables import load_code_tables
from registry.errors import NotFound, msg
from registry.photos import MAX_BYTES as MAX_PHOTO_BYTES
from registry.student_files import build_template

router = APIRouter(prefix="/api", tags=["students"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/students")
def list_students(session: DbSession, user: CurrentUser, q: str | None = Query(None, max_length=50),
                  status: str | None = Query(None, max_length=20), school_code: str | None = Query(None, max_length=10),
                  grade: int | None = Query(None, ge=1, le=9), class_name: str | None = Query(None, max_length=40),
                  limit: int = Query(50, ge=1, le=500), offset: Offset = 0) -> dict[str, Any]:
    rows, total = student_lists.search(session, actor=user, q=q, status=status, school_code=school_code,
                                       grade=grade, class_name=class_name, limit=limit, offset=offset)
    return {"items": [student_read(s, user) for s in rows], "total": total}


@router.get("/students/template.xlsx")
def import_template(user: CurrentUser) -> Response:
    """The blank XLSX a school fills for its initial load (Art. 13): Chinese headers, code dropdowns."""
    return Response(build_template(), media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote('学生信息导入模板.xlsx')}"})


@router.get("/students/export.xlsx")
def export_students(session: DbSession, user: CurrentUser, q: str | None = Query(None, max_length=50),
                    status: str | None = Query(None, max_length=20),
                    school_code: str | None = Query(None, max_length=10), grade: int | None = Query(None, ge=1, le=9),
                    class_name: str | None = Query(None, max_length=40)) -> Response:
    data, total = student_lists.export(session, actor=user, q=q, status=status, school_code=school_code,
                                       grade=grade, class_name=class_name)
    session.commit()
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(f'学生名单-{total}人.xlsx')}"})


@router.get("/students/{student_id}")
def get_student(student_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    student = students.get_student(session, actor=user, student_id=student_id)
    lock = students.key_fields_lock_date(session, student)
    return {**student_read(student, user), "key_fields_lock_date": lock.isoformat() if lock else None}


@router.patch("/students/{student_id}")
def update_student(student_id: RowId, session: DbSession, user: CurrentUser,
                   changes: Annotated[dict[str, Any], Body(examples=[{"class_name": "四年级（2）班"}])],
                   reason: str | None = Query(None, max_length=200)) -> dict[str, Any]:
    warnings = students.update_student(session, actor=user, student_id=student_id, changes=changes,
                                       today=local_today(), reason=reason)
    session.commit()
    return {**student_read(students.get_student(session, actor=user, student_id=student_id), user),
            "warnings": findings(warnings)}


@router.post("/students/{student_id}/void")
def void_student(student_id: RowId, session: DbSession, user: CurrentUser,
                 reason: Annotated[str, Body(embed=True, examples=["重复录入，与另一条记录为同一人"])] = ""
                 ) -> dict[str, Any]:
    """作废 an active record entered by mistake (county reviewer or admin): it never counts for subsidy."""
    student = students.void_active(session, actor=user, student_id=student_id, reason=reason)
    session.commit()
    return student_read(student, user)


@router.get("/county-policy")
def county_policy(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    return policy_read(county_policy_service.policy_of(session, county_policy_service.county_of_user(session, user)))


@router.patch("/county-policy")
def update_county_policy(session: DbSession, user: CurrentUser,
                         changes: Annotated[dict[str, Any], Body(examples=[{"key_field_grace_days": 30}])]
                         ) -> dict[str, Any]:
    policy = county_policy_service.update_policy(session, actor=user, county=county_policy_service.county_of_user(session, user),
                                                 changes=changes)
    session.commit()
    return policy_read(policy)


def policy_read(policy: county_policy_service.CountyPolicy) -> dict[str, Any]:
    return {"key_field_grace_days": policy.key_field_grace_days,
            "key_field_lock_dates": dict(policy.key_field_lock_dates or {})}


@router.put("/students/{student_id}/photo")
def upload_photo(student_id: RowId, request: Request, session: DbSession, user: CurrentUser,
                 photo: UploadFile) -> dict[str, Any]:
    # Read one byte past the limit: enough to refuse an oversize upload without holding all of it.
    # A plain def: decoding the image is CPU work, and FastAPI runs it off the event loop.
    data = photo.file.read(MAX_PHOTO_BYTES + 1)
    student = students.set_photo(session, actor=user, student_id=student_id, data=data,
                                 store=request.app.state.files)
    session.commit()
    return {"id": student.id, "photo": f"/api/students/{student.id}/photo",
            "thumbnail": f"/api/students/{student.id}/photo?thumbnail=true"}


@router.get("/students/{student_id}/photo")
def get_photo(student_id: RowId, request: Request, session: DbSession, user: CurrentUser,
              thumbnail: bool = False) -> Response:
    data = students.photo_of(session, actor=user, student_id=student_id, thumbnail=thumbnail,
                             store=request.app.state.files)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/students/{student_id}/history")
def student_history(student_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    student = students.get_student(session, actor=user, student_id=student_id)
    entries = students.history(session, student=student)
    mask = not may_see_full_id(user, student.school)
    return {"items": [history_read(e, mask=mask) for e in entries], "total": len(entries)}


@router.get("/code-tables/{name}")
def code_table(name: str, user: CurrentUser) -> dict[str, Any]:
    tables = load_code_tables()
    if name not in tables.names():
        raise NotFound(msg("没有代码表 {name}", name=name))
    return {"items": [{"code": i.code, "label": i.label} for i in tables.table(name)]}

"""A student's history shows ID numbers and guardian phones only to roles that may see them in full."""

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from registry import students
from tests.api.conftest import token
from tests.factories import admit, user

BIRTH = date(2015, 4, 17)


def test_history_masks_phones_and_ids_for_roles_without_full_view(client: TestClient,
                                                                  sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        student = admit(session, seq=733, birth=BIRTH, name="历史")
        students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                                changes={"guardian_phone": "13912345678"}, today=date(2026, 9, 1), reason="换号")
        session.commit()
        student_id = student.id
    full = client.get(f"/api/students/{student_id}/history", headers=token(client, "registrar1")).json()
    masked = client.get(f"/api/students/{student_id}/history", headers=token(client, "township1")).json()
    [change] = [e for e in full["items"] if e["action"] == "student.update"]
    [hidden] = [e for e in masked["items"] if e["action"] == "student.update"]
    assert change["after"]["guardian_phone"] == "13912345678"
    assert hidden["after"]["guardian_phone"] == "139****5678" and hidden["before"]["guardian_phone"] == "138****1234"

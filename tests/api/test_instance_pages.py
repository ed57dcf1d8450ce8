"""The instance page (steps, history, 撤回) and the printable approval sheet (审批表), through HTTP."""

import re
from datetime import date

import segno
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry.access import mask_id_number
from registry.audit import AuditEntry
from tests.api.conftest import token
from tests.api.test_imports_api import check_queued, upload
from tests.api.test_pages import csrf_of, login
from tests.factories import student_data
from tests.registry.test_imports import pupil, xlsx

BIRTH = date(2014, 2, 27)  # used by no other test: these students never meet another test's


def start(client: TestClient, seq: int, name: str = "流程页测试生") -> dict:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                           json={"data": {"student": student_data(seq=seq, birth=BIRTH, name=name)}})
    assert response.status_code == 201, response.text
    return response.json()


def open_task(client: TestClient, instance_id: int) -> int:
    tasks = client.get(f"/api/instances/{instance_id}", headers=token(client, "reviewer")).json()["open_tasks"]
    assert len(tasks) == 1, tasks
    return tasks[0]["id"]


def decide(client: TestClient, username: str, instance_id: int, comment: str) -> None:
    response = client.post(f"/api/tasks/{open_task(client, instance_id)}/complete", headers=token(client, username),
                           json={"data": {"decision": "approve", "comment": comment}})
    assert response.status_code == 200, response.text


def completed(client: TestClient, seq: int) -> dict:
    started = start(client, seq)
    decide(client, "principal1", started["id"], "材料齐全，同意上报")
    decide(client, "reviewer", started["id"], "核对无误，确认入库")
    return started


def qr_modules(svg: str) -> list[list[bool]]:
    """The dark modules of segno's inline SVG: one path of horizontal runs, 'M x y' then 'h n' and 'm dx dy'."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", re.search(r' d="([^"]+)"', svg).group(1)):  # type: ignore[union-attr]
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for dx in range(int(float(a))):
                grid[int(y)][int(x) + dx] = True
            x += float(a)
    return grid


def encodes(svg: str, url: str) -> bool:
    modules = qr_modules(svg)
    return any(modules == [[bool(v) for v in row] for row in segno.make_qr(url, error=level).matrix_iter(border=4)]
               for level in "lmqh")


def test_instance_page_shows_steps_history_and_the_next_step(client: TestClient) -> None:
    started = start(client, 601)
    decide(client, "principal1", started["id"], "材料齐全，同意上报")
    login(client, "registrar1")
    page = client.get(f"/instances/{started['id']}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "学生信息录入审核" in text and "进行中" in text and "城关镇中心小学" in text
    assert "李学籍（城关小学）" in text and "发起流程" in text  # who started it, in the history
    assert "校长审核" in text and "王校长（城关小学）" in text and "材料齐全，同意上报" in text and "通过" in text
    assert "确认入库" in text and "县营养办审核员" in text  # the open step and who acts on it
    assert f'href="/students/{started["subject"]["id"]}"' in text
    assert "去办理" not in text and "撤回原因" not in text  # not the registrar's step; the principal acted
    assert "/sheet" not in text  # printable once finished

    client.cookies.clear()
    login(client, "reviewer")
    page = client.get(f"/instances/{started['id']}")
    assert f'href="/tasks/{open_task(client, started["id"])}"' in page.text and "去办理" in page.text


def test_task_and_student_pages_link_to_the_instance(client: TestClient) -> None:
    started = start(client, 603)
    login(client, "principal1")
    task_page = client.get(f"/tasks/{started['open_tasks'][0]['id']}")
    assert f'href="/instances/{started["id"]}"' in task_page.text and "流程详情" in task_page.text
    student_page = client.get(f"/students/{started['subject']['id']}")
    assert f'href="/instances/{started["id"]}"' in student_page.text


def test_instance_pages_are_scoped_and_need_a_login(client: TestClient) -> None:
    started = completed(client, 605)
    for path in (f"/instances/{started['id']}", f"/instances/{started['id']}/sheet"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    login(client, "registrar2")  # another school's registrar: the instance does not exist for them
    for path in (f"/instances/{started['id']}", f"/instances/{started['id']}/sheet"):
        response = client.get(path)
        assert response.status_code == 404 and "找不到" in response.text, path
    page = client.get("/")
    refused = client.post(f"/instances/{started['id']}/withdraw", data={"reason": "x", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 404
    assert client.get("/instances/999999").status_code == 404


def test_initiator_withdraws_through_the_page(client: TestClient, session: Session) -> None:
    started = start(client, 607)
    url = f"/instances/{started['id']}"
    login(client, "registrar1")
    page = client.get(url)
    assert "撤回原因" in page.text and f'action="{url}/withdraw"' in page.text

    assert client.post(f"{url}/withdraw", data={"reason": "录错学校"}).status_code == 403  # no CSRF token
    blank = client.post(f"{url}/withdraw", data={"reason": "  ", "csrf_token": csrf_of(page.text)})
    assert blank.status_code == 422 and "撤回原因：必填" in blank.text and "进行中" in blank.text

    done = client.post(f"{url}/withdraw", data={"reason": "录错学校，重新录入", "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{url}?withdrawn=1"
    page = client.get(done.headers["location"])
    assert "已撤回" in page.text and "录错学校，重新录入" in page.text and "撤回原因" not in page.text
    assert "已作废" in page.text  # the pending student goes back: voided, free to enter again
    again = client.post(f"{url}/withdraw", data={"reason": "再撤一次", "csrf_token": csrf_of(page.text)})
    assert again.status_code == 409 and "流程已结束" in again.text
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.instance_id == started["id"])).all()
    assert "process.withdraw" in actions


def test_withdraw_is_refused_to_others_and_after_the_principal_acted(client: TestClient) -> None:
    started = start(client, 609)
    url = f"/instances/{started['id']}"
    login(client, "principal1")
    page = client.get(url)
    assert page.status_code == 200 and "撤回原因" not in page.text
    refused = client.post(f"{url}/withdraw", data={"reason": "我来撤", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403 and "只有发起人可以撤回" in refused.text

    client.post(f"/api/tasks/{started['open_tasks'][0]['id']}/claim", headers=token(client, "principal1"))
    client.cookies.clear()
    login(client, "registrar1")
    page = client.get(url)
    assert "撤回原因" not in page.text  # claimed: the next step has started
    decide(client, "principal1", started["id"], "同意")
    refused = client.post(f"{url}/withdraw", data={"reason": "想撤回", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409 and "下一环节已开始办理" in refused.text
    assert client.get(f"/api/instances/{started['id']}", headers=token(client, "registrar1")).json()["status"] \
        == "running"


def test_sheet_of_a_completed_intake(client: TestClient, session: Session) -> None:
    started = completed(client, 611)
    id_number = student_data(seq=611, birth=BIRTH)["id_number"]
    login(client, "reviewer")
    sheet = client.get(f"/instances/{started['id']}/sheet")
    assert sheet.status_code == 200, sheet.text
    text = sheet.text
    assert "学生信息录入审核审批表" in text and "演示县" in text and "城关镇中心小学" in text
    assert "流程页测试生" in text and id_number in text and "2014年2月27日" in text and "入学年月" in text
    steps = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", text, re.S)
    assert [(re.sub(r"<br>.*", "", s, flags=re.S), a, o) for s, a, o in steps] == [
        ("发起", "李学籍（城关小学）", "提交"),
        ("校长审核", "王校长（城关小学）", "通过：材料齐全，同意上报"),
        ("确认入库", "张审核（县营养办）", "通过：核对无误，确认入库")]
    assert text.count('class="sign"') == 3 and text.count('class="stamp"') == 3
    assert "size: A4" in text and f"编号：{started['id']}" in text

    url = f"http://testserver/instances/{started['id']}"
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)  # type: ignore[union-attr]
    assert encodes(svg, url) and url in text

    prints = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == started["id"],
                                                      AuditEntry.action == "instance.print")).all()
    assert len(prints) == 1 and prints[0].actor is not None and prints[0].actor.username == "reviewer"
    assert prints[0].after["full_id"] is True
    assert "打印审批表" in client.get(f"/instances/{started['id']}").text  # and in the instance's history


def test_sheet_masks_the_id_for_a_role_that_may_not_read_it(client: TestClient) -> None:
    started = completed(client, 613)
    id_number = student_data(seq=613, birth=BIRTH)["id_number"]
    login(client, "township1")
    sheet = client.get(f"/instances/{started['id']}/sheet")
    assert sheet.status_code == 200
    assert id_number not in sheet.text and mask_id_number(id_number) in sheet.text and "部分隐藏" in sheet.text


def test_sheet_of_a_running_instance_is_refused_with_409(client: TestClient, session: Session) -> None:
    started = start(client, 615)
    login(client, "registrar1")
    refused = client.get(f"/instances/{started['id']}/sheet")
    assert refused.status_code == 409 and "尚未办结" in refused.text and "办结或撤回后才能打印审批表" in refused.text
    assert not session.scalars(select(AuditEntry).where(AuditEntry.instance_id == started["id"],
                                                        AuditEntry.action == "instance.print")).all()


def test_sheet_of_a_withdrawn_instance_shows_the_withdrawal(client: TestClient) -> None:
    started = start(client, 617)
    client.post(f"/api/instances/{started['id']}/withdraw", headers=token(client, "registrar1"),
                json={"reason": "监护人要求暂缓"})
    login(client, "principal1")
    sheet = client.get(f"/instances/{started['id']}/sheet")
    assert sheet.status_code == 200 and "已撤回" in sheet.text and "撤回：监护人要求暂缓" in sheet.text


def test_batch_intake_instance_page_and_sheet(client: TestClient, sessions: sessionmaker[Session]) -> None:
    registrar = token(client, "registrar1")
    batch = upload(client, registrar, xlsx([pupil(621, birth=BIRTH), pupil(623, birth=BIRTH)]), name="一年级名单.xlsx")
    check_queued(client, sessions)
    started = client.post("/api/processes/batch_intake/instances", headers=registrar,
                          json={"data": {"batch_id": batch["id"]}}).json()
    decide(client, "principal1", started["id"], "名单已核对")
    decide(client, "reviewer", started["id"], "全部入库")
    login(client, "registrar1")
    page = client.get(f"/instances/{started['id']}")
    assert page.status_code == 200 and "批量录入" in page.text and f'href="/imports/{batch["id"]}"' in page.text
    assert f'href="/instances/{started["id"]}"' in client.get(f"/imports/{batch['id']}").text
    sheet = client.get(f"/instances/{started['id']}/sheet")
    assert sheet.status_code == 200 and "批量录入审批表" in sheet.text and "一年级名单.xlsx" in sheet.text
    assert re.search(r"<th[^>]*>已入库</th><td>2</td>", sheet.text) and "名单已核对" in sheet.text

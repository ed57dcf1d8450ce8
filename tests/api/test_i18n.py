"""zh-CN by default, English on request: the `lang` cookie, Accept-Language, the catalog and the shared environment."""

import json
import re
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from fastapi.testclient import TestClient

from api import i18n
from api.templating import code_label, label, local_date, local_time, templates
from registry.errors import NotFound, join_messages, msg
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout, student_form
from tests.factories import student_data

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u3400-\u9fff]")


def english(client: TestClient) -> None:
    response = client.get("/lang/en?next=/login", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def element(html: str, tag: str) -> str:
    """The first <tag …>…</tag> of a page (nav, h1, h2): the parts the catalog translates."""
    match = re.search(rf"<{tag}[ >].*?</{tag}>", html, re.S)
    assert match, f"no <{tag}> in {html[:300]}"
    return match.group(0)


def no_han(text: str) -> bool:
    return HAN.search(text) is None


def test_pages_are_chinese_by_default_with_a_switch_to_english(client: TestClient) -> None:
    page = client.get("/login")
    assert '<html lang="zh-CN">' in page.text and "<h1>登录</h1>" in page.text and "用户名" in page.text
    assert 'href="/lang/en?next=/login"' in page.text and ">English</a>" in page.text


def test_the_switch_sets_a_lax_cookie_for_a_year_and_goes_back(client: TestClient) -> None:
    response = client.get("/lang/en?next=/students%3Fq%3D1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/students?q=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("lang=en;") and "Max-Age=31536000" in cookie and "SameSite=lax" in cookie


def test_login_page_in_english_after_the_switch(client: TestClient) -> None:
    english(client)
    page = client.get("/login")
    assert '<html lang="en">' in page.text and "<h1>Log in</h1>" in page.text and "Password" in page.text
    assert "用户名" not in page.text and no_han(element(page.text, "h1"))
    # The way back is labelled in its own language.
    assert 'href="/lang/zh-CN?next=/login"' in page.text and ">中文</a>" in page.text


def test_home_inbox_students_and_schools_in_english(client: TestClient) -> None:
    english(client)
    login(client, "registrar1")
    home = client.get("/")
    assert '<html lang="en">' in home.text
    nav = element(home.text, "nav")
    assert "My tasks" in nav and "Students" in nav and "Reports" in nav and "New student" in nav
    assert no_han(nav) and "待办任务" not in home.text and "To claim" in home.text
    assert "Hello, 李学籍（城关小学）" in home.text and "Log out" in home.text

    inbox = client.get("/tasks")
    assert inbox.status_code == 200 and "<h1>Tasks</h1>" in inbox.text
    assert "Clear filters" in inbox.text and "Save view" in inbox.text and "清除条件" not in inbox.text

    students = client.get("/students")
    assert "<h1>Students</h1>" in students.text and "Search" in students.text and "没有符合条件的学生" not in students.text

    schools = client.get("/schools")
    assert "<h1>Schools</h1>" in schools.text and "School code" in schools.text and "Meal model" in schools.text
    assert no_han(element(schools.text, "thead"))
    school = client.get("/schools/2152019901")
    assert "Change history" in school.text and "School created" in school.text and "建立学校信息" not in school.text
    assert 'href="/schools/2152019901/roster">Roster of subsidised students</a>' in school.text


def test_a_student_and_a_task_page_in_english(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    response = client.post("/students/new", data=student_form(student_data(), csrf_of(page.text)),
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    student_url = response.headers["location"].split("?")[0]
    english(client)
    student = client.get(student_url)
    assert '<html lang="en">' in student.text and "Enrolment periods" in student.text
    assert "Not confirmed yet." in student.text and "Date of birth" in student.text and "出生日期" not in student.text
    logout(client)

    english(client)
    login(client, "principal1")
    inbox = client.get("/tasks")
    task_url = re.search(r'href="(/tasks/\d+)"', inbox.text).group(1)  # type: ignore[union-attr]
    task = client.get(task_url)
    assert task.status_code == 200 and '<html lang="en">' in task.text
    assert "Role: Principal" in task.text and "Process details" in task.text and "Attachments" in task.text
    assert "History" in task.text and "Process diagram" in task.text and "办理记录" not in task.text
    assert no_han(element(task.text, "nav"))


def test_accept_language_picks_english_and_the_cookie_wins_over_it(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in page.text and "<h1>Log in</h1>" in page.text
    chinese_first = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in chinese_first.text
    client.get("/lang/zh-CN", follow_redirects=False)
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in page.text and "<h1>登录</h1>" in page.text


@pytest.mark.parametrize(("header", "locale"), [
    (None, "zh-CN"), ("", "zh-CN"), ("fr-FR,fr", "zh-CN"), ("en-US", "en"), ("fr;q=1, en;q=0.5", "en"),
    ("en;q=0.3, zh-TW;q=0.8", "zh-CN"), ("en;q=0", "zh-CN"), ("*", "zh-CN"),
])
def test_accept_language_negotiation(header: str | None, locale: str) -> None:
    assert i18n.negotiate(None, header) == locale


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_the_switch_refuses_to_send_anyone_elsewhere(client: TestClient, target: str) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_an_unknown_language_is_not_found(client: TestClient) -> None:
    assert client.get("/lang/fr?next=/", follow_redirects=False).status_code == 404


def test_requests_in_turn_keep_their_own_language(client: TestClient) -> None:
    for lang, heading in [("en", "<h1>Log in</h1>"), ("zh-CN", "<h1>登录</h1>"), ("en", "<h1>Log in</h1>")]:
        assert heading in client.get("/login", headers={"Cookie": f"lang={lang}"}).text


def test_concurrent_renders_in_two_languages_do_not_mix() -> None:
    # One shared environment, two threads each in its own context, interleaved by a barrier between renders.
    template = templates.env.from_string('{{ _("首页") }} {{ day | local_date }} {{ "open" | label }}')
    barrier = threading.Barrier(2)
    seen: dict[str, list[str]] = {"zh-CN": [], "en": []}

    def render(locale: str) -> None:
        i18n.set_locale(locale)
        for _ in range(3):
            barrier.wait()
            seen[locale].append(template.render(day=date(2026, 9, 10)))

    threads = [threading.Thread(target=render, args=(locale,)) for locale in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"zh-CN": ["首页 2026年9月10日 待办"] * 3, "en": ["Home 10 Sep 2026 Open"] * 3}
    assert i18n.current_locale() == "zh-CN"  # the threads' choices never reached this one


def test_dates_and_labels_in_english() -> None:
    token = i18n.set_locale("en")
    try:
        assert local_date(date(2026, 9, 10)) == "10 Sep 2026" and local_date("2023-09") == "Sep 2023"
        assert local_time(datetime(2026, 9, 10, 6, 5, tzinfo=UTC)) == "10 Sep 2026 14:05"
        assert label("school_principal") == "Principal" and label("no-such-code") == "no-such-code"
    finally:
        i18n.reset_locale(token)
    assert local_time(datetime(2026, 9, 10, 6, 5, tzinfo=UTC)) == "2026年9月10日 14:05"


def test_every_template_text_and_label_has_an_english_translation() -> None:
    # The same extraction as `pybabel extract -F babel.cfg`: a text wrapped in a template without a translation
    # fails here, listed with its file.
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    extracted = {(context, message): filename for filename, _lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map,
        directory_filter=lambda path: Path(path).relative_to(ROOT).parts[0] in ("api", "registry", "processes"))}
    assert len(extracted) > 1500
    catalog = i18n.load_catalog("en")
    untranslated = [f"{filename}: {message!r}" + (f" (context {context!r})" if context else "")
                    for (context, message), filename in sorted(extracted.items(), key=str)
                    if not (entry := catalog.get(message, context=context)) or entry.fuzzy or not entry.string]
    assert not untranslated, "not in api/translations/en/LC_MESSAGES/messages.po (see babel.cfg):\n" + \
        "\n".join(untranslated)
    wrong = [f"{entry.id!r}: {errors}" for entry, errors in catalog.check()]
    assert not wrong, "\n".join(wrong)


BRACES = re.compile(r"(?<!{){([A-Za-z_][A-Za-z0-9_]*)[^{}]*}(?!})")


def test_every_message_translation_keeps_the_placeholders_of_its_template() -> None:
    # msg("找不到学生 {student_id}") formats its English with the same parameters: a misspelt name would fall back
    # to the Chinese at runtime, so it fails here instead. Jinja's {{ … }} (instructions) is not str.format.
    wrong = [f"{entry.id!r} → {entry.string!r}" for entry in i18n.load_catalog("en")
             if entry.id and isinstance(entry.id, str) and isinstance(entry.string, str) and "{{" not in entry.id
             and set(BRACES.findall(entry.id)) != set(BRACES.findall(entry.string))]
    assert not wrong, "\n".join(wrong)


def test_a_registry_message_is_chinese_as_a_string_and_english_on_request() -> None:
    err = NotFound(msg("找不到学生 {student_id}", student_id=42))
    assert str(err) == err.message == "找不到学生 42" and f"{err.message}" == "找不到学生 42"
    token = i18n.set_locale("en")
    try:
        assert i18n.translated(err.message) == "No student 42"
        # A parameter that is itself a message is translated too; data (names) stays as it is.
        field = msg("{label}：{detail}", label=msg("出生日期"), detail=msg("不能晚于今天"))
        assert field == "出生日期：不能晚于今天" and i18n.translated(field) == "Date of birth: Cannot be later than today"
        joined = join_messages([msg("找不到学生 {student_id}", student_id=1), "张三：其他"])
        assert joined == "找不到学生 1；张三：其他" and i18n.translated(joined) == "No student 1; 张三：其他"
        # A template the catalog lacks (a process deployed later) stays Chinese, all of it; a plain str as it is.
        assert i18n.translated(msg("新的说明 {n}", n=msg("出生日期"))) == "新的说明 出生日期"
        assert i18n.translated("中文") == "中文"
        assert code_label("ethnicity", "01") == "Han" and code_label("sex", "2") == "Female"
    finally:
        i18n.reset_locale(token)
    assert i18n.translated(err.message) == "找不到学生 42" and code_label("ethnicity", "01") == "汉族"


def test_a_registry_error_in_the_api_follows_the_language(client: TestClient) -> None:
    headers = token(client, "registrar1")
    chinese = client.get("/api/students/999999", headers=headers)
    assert chinese.status_code == 404 and chinese.json()["message"] == "找不到学生 999999"
    english_answer = client.get("/api/students/999999", headers={**headers, "Accept-Language": "en"})
    assert english_answer.status_code == 404
    assert english_answer.json() == {"code": "not_found", "message": "No student 999999", "details": None}


def test_a_registry_error_page_and_a_form_error_in_english(client: TestClient) -> None:
    english(client)
    login(client, "registrar1")
    missing = client.get("/students/999999")
    assert missing.status_code == 404 and "No student 999999" in missing.text and "找不到学生" not in missing.text

    page = client.get("/students/new")
    # The code tables' selects: the standard English names.
    assert '<option value="01">01 Han</option>' in page.text or ">01 Han<" in page.text
    assert "汉族" not in page.text and "Miao" in page.text
    data = {**student_data(), "birth_date": "2999-01-01"}
    refused = client.post("/students/new", data=student_form(data, csrf_of(page.text)), follow_redirects=False)
    assert refused.status_code == 422
    assert "Cannot be later than today" in refused.text and "不能晚于今天" not in refused.text


def test_the_same_form_error_in_chinese_is_as_before(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    assert "01 汉族" in page.text
    data = {**student_data(), "birth_date": "2999-01-01"}
    refused = client.post("/students/new", data=student_form(data, csrf_of(page.text)), follow_redirects=False)
    assert refused.status_code == 422 and "出生日期：不能晚于今天" in refused.text


def test_a_task_page_title_and_form_in_english(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    client.post("/students/new", data=student_form(student_data(), csrf_of(page.text)), follow_redirects=False)
    logout(client)
    login(client, "principal1")
    task_url = re.search(r'href="(/tasks/\d+)"', client.get("/tasks").text).group(1)  # type: ignore[union-attr]
    chinese = client.get(task_url).text
    assert "<h1>校长审核" in chinese and "退回修改" in chinese and "审核意见" in chinese
    english(client)
    task = client.get(task_url).text
    assert "<h1>Principal review" in task and "<title>Principal review" in task
    # The form's labels and choices come from processes/forms/review.json, translated by the catalog.
    form = re.search(r'<form[^>]*id="task-form".*?</form>', task, re.S).group(0)  # type: ignore[union-attr]
    assert "Review decision" in form and "Return for changes" in form and "Review comment" in form
    assert no_han(form) and "校长审核" not in task
    # The draft saver's words (drafts.js) and the diagram's (diagram.js) come with the page.
    assert 'data-say-saved="Draft saved {time}"' in form and 'data-say-offline="Offline; will retry"' in form
    assert 'data-say-loading="Loading the diagram…"' in task


def test_a_bpmn_instructions_text_is_rendered_in_english_with_the_same_data() -> None:
    from engine.definitions import load_process_dir
    from engine.templates import compile_instructions
    from registry.instructions import render

    definitions = {d.process_id: d for d in load_process_dir(ROOT / "processes")}
    intake = definitions["student_intake"]
    shown = render(intake, "review_intake", {"student_id": 7})
    assert shown == "请审核学生（编号 7）的录入信息。退回修改或驳回时须填写审核意见。"
    token = i18n.set_locale("en")
    try:
        assert i18n.translated(shown) == ("Review the record entered for student no. 7. "
                                          "Returning or rejecting needs a review comment.")
        assert templates.env.from_string("{{ text }}").render(text=shown).startswith("Review the record")
        # Every instruction of every shipped process has an English that compiles in the sandbox.
        for definition in definitions.values():
            for task in definition.user_tasks.values():
                if task.instructions:
                    english_source = i18n.gettext(task.instructions)
                    assert english_source != task.instructions and no_han(english_source), task.id
                    compile_instructions(english_source)
                assert no_han(i18n.gettext(task.name)), task.name
    finally:
        i18n.reset_locale(token)


def test_the_dashboard_charts_and_their_words_in_english(client: TestClient) -> None:
    english(client)
    login(client, "aidcenter")
    page = client.get("/dashboard")
    assert page.status_code == 200
    block = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text, re.S)
    assert block and '<div class="dashboard" data-pie-label="{b}: {c}">' in page.text
    charts = json.loads(block.group(1))
    # Titles, series and the months are words of the page; school and township names are data and stay.
    assert all(no_han(c["title"]) and all(no_han(s) for s in c["series"]) for c in charts), charts
    months = next(c for c in charts if c["key"] == "months")
    assert months["labels"][:2] == ["Sep", "Oct"] and months["series"][0] == "Subsidised students"
    assert "<h2 id=\"chart-months\">Subsidised students and subsidy by month</h2>" in page.text


def test_a_warning_in_the_api_follows_the_language(client: TestClient) -> None:
    headers = {**token(client, "registrar1"), "Accept-Language": "en"}
    response = client.post("/api/processes/student_intake/instances",
                           json={"data": {"student": {**student_data(), "name": "张3"}}}, headers=headers)
    assert response.status_code == 201, response.text
    assert {"field": "name", "code": "latin_or_digit", "severity": "warning",
            "message": "Name: \"张3\" contains digits or Latin letters; please check"} in response.json()["warnings"]

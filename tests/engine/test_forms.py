from __future__ import annotations

import re

import pytest

from engine.definitions import Definition
from engine.errors import FormDataError
from engine.forms import Submission, form_problems, submission
from tests.engine.samples import valid_student

# DESIGN "Student fields": the names the API, forms, import and export share.
STUDENT_FIELDS = {
    "name", "former_name", "sex", "birth_date", "id_type", "id_number", "ethnicity", "hukou_area",
    "hukou_address", "school_code", "grade", "class_name", "enrolled_month", "enrolment_mode",
    "boarding_mode", "health", "height_cm", "weight_kg", "left_behind", "migrant_child",
    "boarding_allowance", "address", "guardian_name", "guardian_phone", "file_card_no",
    "student_number", "student_number_aux", "national_student_number",
}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def revise(intake: Definition, student: dict) -> Submission:
    return submission(intake, "revise_intake", {"student": student})


def test_shipped_forms_are_valid_2020_12_schemas(intake: Definition) -> None:
    assert {name: form_problems(form) for name, form in intake.forms.items()} == {"review": [], "student": []}


def test_student_form_has_exactly_the_design_fields_each_with_a_chinese_title(intake: Definition) -> None:
    properties = intake.forms["student"]["properties"]

    assert set(properties) == STUDENT_FIELDS
    assert all(CHINESE.search(p["title"]) for p in properties.values())
    assert intake.forms["student"]["additionalProperties"] is False


def test_fully_filled_student_is_accepted(intake: Definition) -> None:
    student = valid_student(
        former_name="王明",
        hukou_area="520102",
        hukou_address="贵州省贵阳市南明区某街道",
        enrolment_mode="11",
        health="1",
        height_cm=132.5,
        weight_kg=28,
        left_behind="2",
        migrant_child=False,
        boarding_allowance=True,
        address="某村某组",
        guardian_name="王大山",
        guardian_phone="138 0000 0000",
        file_card_no="JD-001",
        student_number="11010520160504001X",
        student_number_aux="01",
        national_student_number="G11010520160504001X",
    )

    assert revise(intake, student).action_input == student


@pytest.mark.parametrize(
    "change",
    [
        {"school_code": "215200001"},
        {"grade": 0},
        {"grade": 10},
        {"grade": "3"},
        {"enrolled_month": "2022-13"},
        {"enrolled_month": "2022-9"},
        {"ethnicity": "1"},
        {"sex": "男"},
        {"boarding_mode": "3"},
        {"left_behind": "3"},
        {"birth_date": "2016-02-30"},
        {"birth_date": "20160504"},
        {"national_student_number": "X11010520160504001X"},
        {"height_cm": -1},
        {"migrant_child": "否"},
        {"name": "  "},
        {"nickname": "小明"},
    ],
)
def test_student_with_a_bad_field_is_refused(intake: Definition, change: dict) -> None:
    with pytest.raises(FormDataError) as caught:
        revise(intake, valid_student(**change))
    assert caught.value.errors


@pytest.mark.parametrize(
    "field",
    ["name", "sex", "birth_date", "id_type", "id_number", "ethnicity", "school_code", "grade", "class_name",
     "enrolled_month", "boarding_mode"],
)
def test_student_without_a_required_field_is_refused(intake: Definition, field: str) -> None:
    student = valid_student()
    del student[field]

    with pytest.raises(FormDataError) as caught:
        revise(intake, student)
    assert caught.value.errors == [{"path": "/student", "message": f"'{field}' is a required property"}]


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        ({"decision": "approve"}, True),
        ({"decision": "approve", "comment": "同意"}, True),
        ({"decision": "return", "comment": "请补充监护人电话"}, True),
        ({"decision": "reject", "comment": "重复录入"}, True),
        ({"decision": "return"}, False),
        ({"decision": "reject", "comment": ""}, False),
        ({"decision": "approve", "comment": "长" * 501}, False),
        ({"decision": "通过"}, False),
    ],
)
def test_review_form_requires_a_comment_unless_approving(intake: Definition, data: dict, accepted: bool) -> None:
    if accepted:
        assert submission(intake, "review_intake", data).workflow_data == data
    else:
        with pytest.raises(FormDataError):
            submission(intake, "review_intake", data)

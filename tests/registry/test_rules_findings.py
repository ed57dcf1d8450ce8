import dataclasses

import pytest

from registry.rules.findings import Finding, error, errors, warning, warnings

BAD = Finding("id_number", "check_digit", "身份证件号：校验位错误：应为 X，实为 5", "error")
ODD = Finding("grade", "age_for_grade", "年级：年龄与年级不符", "warning")


def test_errors_and_warnings_split_findings_keeping_order() -> None:
    other_bad = Finding("sex", "required", "性别：必填", "error")
    findings = [BAD, ODD, other_bad]
    assert errors(findings) == [BAD, other_bad]
    assert warnings(findings) == [ODD]


def test_helpers_take_any_iterable_and_empty_input() -> None:
    assert errors(iter([ODD])) == []
    assert warnings(f for f in [ODD]) == [ODD]
    assert errors([]) == warnings([]) == []


def test_builders_prefix_the_field_label() -> None:
    assert error("id_number", "身份证件号", "check_digit", "校验位错误：应为 X，实为 5") == BAD
    assert warning("grade", "年级", "age_for_grade", "年龄与年级不符") == ODD


def test_findings_are_immutable_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BAD.message = "x"  # type: ignore[misc]
    assert len({BAD, BAD, ODD}) == 2

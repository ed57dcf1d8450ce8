from engine.definitions import Definition
from engine.steps import Step, process_steps


def test_intake_steps_are_its_tasks_in_flow_order(intake: Definition) -> None:
    steps = process_steps(intake)
    ids = [s.id for s in steps]
    # Tasks only (no events or gateways), each once although the return loop reaches some twice.
    assert sorted(ids) == sorted(["check_duplicates", "review_intake", "resolve_duplicate", "revise_intake",
                                  "void_intake", "confirm_intake", "mark_overdue", "activate_student"])
    assert ids.index("check_duplicates") < ids.index("review_intake") < ids.index("confirm_intake") \
        < ids.index("activate_student")
    assert Step("review_intake", "校长审核") in steps

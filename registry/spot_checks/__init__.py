"""Spot checks (抽查, Art. 25, 26): the county auditor samples schools and students with a recorded
seed, each sampled school provides evidence per student, the auditor records findings, schools with
findings rectify within a deadline and the auditor verifies, and the check ends in a report.

How it runs: one `spot_check` instance per check (its subject is the `spot_check` row) draws the
sample in a service task and then starts one `spot_check_school` instance per sampled school
(`registry/flows/spot_check.py`), and waits at the auditor's 审结 step. A child instance per school,
rather than a multi-instance subprocess inside one instance, because:
- attachments and the instance page belong to an instance: per school, a school sees its own scans
  and steps and never another school's (one instance would show every school's evidence to each);
- `mark_overdue` flags open tasks by BPMN task id within an instance: per school, a school's
  rectification deadline passing flags that school's task only;
- the school's inbox item, its instance page and its audit trail name the school.

Modules: `models` (tables), `draw` (parameters, population, the seeded draw), `service` (what each
step writes), `views` (the report, a school's part, the evidence page's saving of scans).
"""

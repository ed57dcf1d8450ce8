"""The seeded draw of a spot check (抽查, Art. 25 随机抽查): which schools, which students.

Pure: the population comes in as plain data (school codes in code order, each with its candidate
student ids in id order), so the same seed over the same population gives the same sample, on any
machine, today or in ten years. That is what lets an auditor's draw be re-run by anyone to show it
was not picked by hand.

Only `random.Random(seed).random()` is used. Python promises that `random()` gives the same sequence
for the same int seed across versions, and promises nothing of the same kind for `sample`,
`shuffle`, `choice` or `randrange` (randrange changed in 3.12): a partial Fisher–Yates over
`random()` keeps the draw reproducible on a later Python.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
MAX_SEED = 10**18 - 1  # at most 18 decimal digits: a seed is read out, written down and typed in again


@dataclass(frozen=True)
class SchoolPopulation:
    code: str
    student_ids: tuple[int, ...]  # the school's candidates, ascending


@dataclass(frozen=True)
class SchoolSample:
    code: str
    eligible: int
    student_ids: tuple[int, ...]  # ascending

    @property
    def took_all(self) -> bool:
        return len(self.student_ids) == self.eligible


@dataclass(frozen=True)
class Sample:
    seed: int
    schools: tuple[SchoolSample, ...]  # by school code
    eligible_schools: tuple[str, ...] = field(default=())  # the schools the school draw chose among


def pick(rng: random.Random, items: Sequence[T], k: int) -> list[T]:
    """k items (all of them when there are fewer), in the order drawn: a partial Fisher–Yates shuffle."""
    pool = list(items)
    k = max(0, min(k, len(pool)))
    for i in range(k):
        # random() < 1, so j < len(pool); the float's 53 bits make the bias nil at these sizes.
        j = i + int(rng.random() * (len(pool) - i))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def draw(*, seed: int, population: Sequence[SchoolPopulation], per_school: int,
         school_count: int | None = None) -> Sample:
    """`school_count` None: every school of `population` is in the sample (the auditor named them);
    otherwise that many are drawn first, among the schools with at least one candidate. Then, school by
    school in code order, `per_school` students each (all of them where a school has no more)."""
    ordered = sorted(population, key=lambda p: p.code)
    if len({p.code for p in ordered}) != len(ordered):
        raise ValueError("a school appears twice in the population")
    for school in ordered:
        if list(school.student_ids) != sorted(set(school.student_ids)):
            raise ValueError(f"candidates of {school.code} are not unique and ascending")
    eligible = tuple(p.code for p in ordered if p.student_ids or school_count is None)
    by_code = {p.code: p.student_ids for p in ordered}
    return _draw(seed, eligible, school_count, by_code, per_school)


def redraw(*, seed: int, eligible_schools: Sequence[str], candidates: Mapping[str, Sequence[int]],
           per_school: int, school_count: int | None = None) -> Sample:
    """The draw again from what a check recorded: the schools the school draw chose among, and the
    candidates of the schools it chose (the others' candidates play no part). KeyError when a chosen
    school's candidates were not recorded: then the record does not match its seed."""
    return _draw(seed, tuple(sorted(eligible_schools)), school_count,
                 {code: tuple(ids) for code, ids in candidates.items()}, per_school)


def _draw(seed: int, eligible: tuple[str, ...], school_count: int | None, candidates: Mapping[str, tuple[int, ...]],
          per_school: int) -> Sample:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed out of range: {seed}")
    rng = random.Random(seed)
    chosen = list(eligible) if school_count is None else sorted(pick(rng, eligible, school_count))
    schools = []
    for code in chosen:  # in code order: the generator's state after each school is part of the draw
        ids = candidates[code]
        schools.append(SchoolSample(code=code, eligible=len(ids), student_ids=tuple(sorted(pick(rng, ids, per_school)))))
    return Sample(seed=seed, schools=tuple(schools), eligible_schools=eligible)

"""Pure tests of the selection-rule parser and evaluator (`ncinfo_async.sim._rules`)."""

from __future__ import annotations

import pytest

from ncinfo_async.sim._rules import (
    And,
    Not,
    Or,
    Pred,
    RuleError,
    candidate_ids,
    compile_rule,
    parse,
    parse_int,
)

INDEX = {"IDINT": 0, "STATUS": 1, "HOST": 2, "DURATION": 3}
INT_FIELDS = {"IDINT", "DURATION"}
ROWS = [
    (1, "VALID", "lnx01a", 30),
    (2, "FAILED", "lnx02b", 700),
    (3, "RUNNING", "lnx01a", 5),
    (4, "SCHEDULED", "", 0),
    (5, "VALID", "big,host", 7200),
]


def matching(rule: str) -> list[int]:
    match = compile_rule(parse(rule), INDEX, int_fields=INT_FIELDS)
    return [row[0] for row in ROWS if match(row)]


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("status==VALID", Pred("status", "==", ("VALID",))),
        ("status=VALID", Pred("status", "==", ("VALID",))),
        ("idint==1,2,3", Pred("idint", "==", ("1", "2", "3"))),
        ("host", Pred("host", None, ())),
        ("a==1 b==2", And((Pred("a", "==", ("1",)), Pred("b", "==", ("2",))))),
        ("a==1 & b==2", And((Pred("a", "==", ("1",)), Pred("b", "==", ("2",))))),
        ("a==1 AND b==2", And((Pred("a", "==", ("1",)), Pred("b", "==", ("2",))))),
        ("a==1|b==2", Or((Pred("a", "==", ("1",)), Pred("b", "==", ("2",))))),
        ("a==1 or b==2", Or((Pred("a", "==", ("1",)), Pred("b", "==", ("2",))))),
        ("!a==1", Not(Pred("a", "==", ("1",)))),
        ("NOT a==1", Not(Pred("a", "==", ("1",)))),
        (
            "a==1 b==2 | c==3",
            Or((And((Pred("a", "==", ("1",)), Pred("b", "==", ("2",)))), Pred("c", "==", ("3",)))),
        ),
        (
            "a==1 (b==2 | c==3)",
            And((Pred("a", "==", ("1",)), Or((Pred("b", "==", ("2",)), Pred("c", "==", ("3",)))))),
        ),
        ('host~"a,b"', Pred("host", "~", ("a,b",))),
        ('host=="x y",z', Pred("host", "==", ("x y", "z"))),
        ("duration>=10m", Pred("duration", ">=", ("10m",))),
        ("host!~^lnx", Pred("host", "!~", ("^lnx",))),
    ],
)
def test_parse_builds_tree(text: str, tree: object) -> None:
    """Each operator and connective parses to the expected tree, AND tighter than OR."""
    assert parse(text) == tree


@pytest.mark.parametrize(
    "text",
    ["", "   ", "(", "a==1 )", "(a==1", "a==1 |", "== 3", "a==1 & & b==2", 'a=="open', "!"],
)
def test_parse_rejects_malformed(text: str) -> None:
    """Malformed rules raise RuleError (the server turns it into a 400)."""
    with pytest.raises(RuleError):
        parse(text)


@pytest.mark.parametrize(
    ("rule", "ids"),
    [
        ("status==VALID", [1, 5]),
        ("status==FAILED,RUNNING", [2, 3]),
        ("status!=VALID", [2, 3, 4]),
        ("status!=VALID,FAILED", [3, 4]),
        ("idint<3", [1, 2]),
        ("idint>3", [4, 5]),
        ("idint<=3 idint>=2", [2, 3]),
        ("idint<2 | idint>4", [1, 5]),
        ("duration>10m", [2, 5]),
        ("duration>1h", [5]),
        ("host~^lnx01", [1, 3]),
        ("status~ALI,AIL", [1, 2, 5]),
        ("host!~lnx", [4, 5]),
        ('host~"g,h"', [5]),
        ("host", [1, 2, 3, 5]),
        ("!host", [4]),
        ("NOT status==VALID", [2, 3, 4]),
        ("status==VALID | status==RUNNING host==lnx01a", [1, 3, 5]),
        ("(status==VALID | status==RUNNING) host==lnx01a", [1, 3]),
        ("STATUS==valid", []),
        ("Status==VALID", [1, 5]),
        ("idint==2,4,99", [2, 4]),
    ],
)
def test_rule_selects_rows(rule: str, ids: list[int]) -> None:
    """Rules select exactly the expected rows (field names case-insensitive, values not)."""
    assert matching(rule) == ids


@pytest.mark.parametrize("rule", ["nosuch==1", "idint==abc", "duration>10x", "host~("])
def test_compile_rejects_bad_fields_and_values(rule: str) -> None:
    """Unknown fields, non-integer values for int fields and bad regexes raise RuleError."""
    with pytest.raises(RuleError):
        compile_rule(parse(rule), INDEX, int_fields=INT_FIELDS)


@pytest.mark.parametrize(
    ("text", "value"),
    [("90", 90), ("-3", -3), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800)],
)
def test_parse_int_accepts_ints_and_timespecs(text: str, value: int) -> None:
    """Integer fields accept plain integers and timespecs."""
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "m", "10x", "1h 2m", "h1"])
def test_parse_int_rejects_garbage(text: str) -> None:
    """Anything else is a RuleError."""
    with pytest.raises(RuleError):
        parse_int(text)


@pytest.mark.parametrize(
    ("rule", "ids"),
    [
        ("idint==1,2,3", {1, 2, 3}),
        ("IDINT==7", {7}),
        ("idint==1,2 | idint==5", {1, 2, 5}),
        ("idint==1,2,3 status==VALID", {1, 2, 3}),
        ("idint==1,2,3 idint==2,3,4", {2, 3}),
        ("status==VALID", None),
        ("idint==1 | status==VALID", None),
        ("!idint==1", None),
        ("idint<5", None),
    ],
)
def test_candidate_ids_narrows_only_when_safe(rule: str, ids: set[int] | None) -> None:
    """The ID fast path yields a candidate set exactly when the rule restricts IDs."""
    assert candidate_ids(parse(rule)) == (None if ids is None else frozenset(ids))


def test_huge_idint_list_parses_linearly() -> None:
    """A 20,000-ID comma list parses into one predicate with every value."""
    rule = parse("idint==" + ",".join(str(n) for n in range(1, 20001)))
    assert isinstance(rule, Pred)
    assert len(rule.values) == 20000
    assert candidate_ids(rule) == frozenset(range(1, 20001))


@pytest.mark.parametrize(
    ("rule", "ids"),
    [
        ("isjob", [1, 2, 3, 4, 5]),
        ("isjob & status==FAILED,VALID", [1, 2, 5]),
        ("isjob duration>10m", [2, 5]),
        ("!isjob | idint==3", [3]),
        ("isfile", []),
        ("ISJOB==1 idint<3", [1, 2]),
    ],
)
def test_flags_hold_for_every_row(rule: str, ids: list[int]) -> None:
    """Flag fields (isjob, isfile) have one value for all rows and combine with the rest."""
    match = compile_rule(parse(rule), INDEX, int_fields=INT_FIELDS, flags={"ISJOB": 1, "ISFILE": 0})
    assert [row[0] for row in ROWS if match(row)] == ids


def test_flags_are_unknown_without_being_declared() -> None:
    """Without the flags mapping, isjob is an unknown field, as before."""
    with pytest.raises(RuleError, match="isjob"):
        compile_rule(parse("isjob"), INDEX, int_fields=INT_FIELDS)

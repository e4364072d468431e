"""VOV selection rules (the `where` of `/api/v3/query`): parser and evaluator, pure.

The supported subset follows SELRULES as summarised in the reference, section 1.4.1:
predicates `field op value[,value...]` with `==`, `!=`, `<`, `<=`, `>`, `>=`, `~`
(regex) and `!~`; a bare field means "non-zero / non-empty"; `AND`/`&`/a bare space,
`OR`/`|`, `NOT`/`!` and parentheses, AND binding tighter than OR. Double quotes make a
value literal (e.g. a regex holding a comma or a bar). Integer fields accept timespecs
such as `10m` or `1h30m`.

    tree = parse("status==VALID,FAILED | idint<5000")
    match = compile_rule(tree, {"STATUS": 0, "IDINT": 1}, int_fields={"IDINT"})
    match(("VALID", 7))  # True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "And",
    "Not",
    "Or",
    "Pred",
    "Rule",
    "RuleError",
    "candidate_ids",
    "compile_rule",
    "parse",
    "parse_int",
]


class RuleError(ValueError):
    """A selection rule that cannot be parsed or applied."""


@dataclass(frozen=True, slots=True)
class Pred:
    """`field op values`; `op` is None for a bare field (true when non-zero/non-empty)."""

    field: str
    op: str | None
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Negation of a sub-rule."""

    rule: Rule


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more sub-rules."""

    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more sub-rules."""

    rules: tuple[Rule, ...]


Rule: TypeAlias = Pred | Not | And | Or
Matcher: TypeAlias = Callable[[Sequence[Any]], bool]

_SPACE = re.compile(r"\s+")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OP = re.compile(r"\s*(==|!=|<=|>=|!~|<|>|~|=)\s*")
# One comma-separated value list; quoted items may hold any character but a quote.
_VALUES = re.compile(r'(?:"[^"]*"|[^\s()&|,"])*(?:,(?:"[^"]*"|[^\s()&|,"])*)*')
_TIMESPEC = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYWORDS = {"AND", "OR", "NOT"}


def parse_int(text: str) -> int:
    """Parse an integer or a timespec (`90`, `-3`, `10m`, `1h30m`, `2d`) to an int.

    Raises:
        RuleError: `text` is neither.
    """
    try:
        return int(text)
    except ValueError:
        pass
    lowered = text.strip().lower()
    pos, total = 0, 0
    for match in _TIMESPEC.finditer(lowered):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(lowered):
        raise RuleError(f"not an integer or timespec: {text!r}")
    return total


def _split_values(raw: str) -> tuple[str, ...]:
    if '"' not in raw:
        return tuple(raw.split(","))
    return tuple(_split_quoted(raw))


def _split_quoted(raw: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    in_quote = False
    for char in raw:
        if char == '"':
            in_quote = not in_quote
        elif char == "," and not in_quote:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


class _Parser:
    """Recursive descent over the rule text; positions index into `text`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> RuleError:
        return RuleError(f"{message} at offset {self.pos} in selection rule {self.text!r}")

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def peek_keyword(self) -> str | None:
        match = _FIELD.match(self.text, self.pos)
        if match and match.group().upper() in _KEYWORDS:
            # `NOT==1` would be a predicate on a field named NOT, not the keyword.
            if _OP.match(self.text, match.end()):
                return None
            return match.group().upper()
        return None

    def parse_or(self) -> Rule:
        rules = [self.parse_and()]
        while True:
            self.skip_space()
            if self.text.startswith("|", self.pos):
                self.pos += 1
            elif self.peek_keyword() == "OR":
                self.pos += 2
            else:
                break
            rules.append(self.parse_and())
        return rules[0] if len(rules) == 1 else Or(tuple(rules))

    def parse_and(self) -> Rule:
        rules = [self.parse_unary()]
        while True:
            self.skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] in "|)":
                break
            keyword = self.peek_keyword()
            if keyword == "OR":
                break
            if self.text[self.pos] == "&":
                self.pos += 1
            elif keyword == "AND":
                self.pos += 3
            # Anything else is a bare space, which SELRULES defines as AND.
            rules.append(self.parse_unary())
        return rules[0] if len(rules) == 1 else And(tuple(rules))

    def parse_unary(self) -> Rule:
        self.skip_space()
        if self.pos >= len(self.text):
            raise self.fail("expected a predicate")
        char = self.text[self.pos]
        if char == "!":
            self.pos += 1
            return Not(self.parse_unary())
        if self.peek_keyword() == "NOT":
            self.pos += 3
            return Not(self.parse_unary())
        if char == "(":
            self.pos += 1
            inner = self.parse_or()
            self.skip_space()
            if not self.text.startswith(")", self.pos):
                raise self.fail("expected ')'")
            self.pos += 1
            return inner
        return self.parse_predicate()

    def parse_predicate(self) -> Pred:
        match = _FIELD.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a field name")
        name = match.group()
        self.pos = match.end()
        op_match = _OP.match(self.text, self.pos)
        if not op_match:
            return Pred(name, None, ())
        op = op_match.group(1)
        self.pos = op_match.end()
        values = _VALUES.match(self.text, self.pos)
        assert values is not None  # the pattern also matches the empty string
        self.pos = values.end()
        if self.text.count('"', op_match.end(), self.pos) % 2:
            raise self.fail("unterminated quote")
        return Pred(name, "==" if op == "=" else op, _split_values(values.group()))


def parse(text: str) -> Rule:
    """Parse a selection rule into a tree of `Pred`, `Not`, `And` and `Or`.

    Raises:
        RuleError: The text is empty or not a valid rule.
    """
    parser = _Parser(text)
    parser.skip_space()
    if parser.pos >= len(text):
        raise RuleError("empty selection rule")
    rule = parser.parse_or()
    parser.skip_space()
    if parser.pos != len(text):
        raise parser.fail("unexpected text")
    return rule


def candidate_ids(rule: Rule, id_field: str = "IDINT") -> frozenset[int] | None:
    """Return the only IDs `rule` can match, or None when it does not restrict IDs.

    This is what keeps batched `idint==a,b,c,...` lookups a set lookup rather than a
    scan; the rule must still be evaluated on each candidate unless it is a bare
    `idint==` predicate.
    """
    if isinstance(rule, Pred):
        if rule.field.upper() == id_field and rule.op == "==":
            return frozenset(parse_int(value) for value in rule.values)
        return None
    if isinstance(rule, Or):
        union: set[int] = set()
        for sub in rule.rules:
            ids = candidate_ids(sub, id_field)
            if ids is None:
                return None
            union |= ids
        return frozenset(union)
    if isinstance(rule, And):
        found = [ids for sub in rule.rules if (ids := candidate_ids(sub, id_field)) is not None]
        if not found:
            return None
        return frozenset.intersection(*found)
    return None


def compile_rule(
    rule: Rule,
    index: Mapping[str, int],
    *,
    int_fields: Collection[str],
    flags: Mapping[str, int] | None = None,
) -> Matcher:
    """Turn `rule` into a predicate over one row (values positioned by `index`).

    `index` maps upper-case field names to row positions; field names in the rule are
    case-insensitive ([DOC] NODEFIELDS). String comparisons are case-sensitive. `flags`
    are integer fields with one value for every row of the source (`isjob` is 1 for each
    row of `jobs`); they are not part of the row.

    Raises:
        RuleError: The rule names an unknown field or gives a non-integer value for an
            integer field.
    """
    flags = flags or {}
    if isinstance(rule, Not):
        inner = compile_rule(rule.rule, index, int_fields=int_fields, flags=flags)
        return lambda row: not inner(row)
    if isinstance(rule, And | Or):
        parts = [compile_rule(sub, index, int_fields=int_fields, flags=flags) for sub in rule.rules]
        if isinstance(rule, And):
            return lambda row: all(part(row) for part in parts)
        return lambda row: any(part(row) for part in parts)
    name = rule.field.upper()
    if name in flags and name not in index:
        # The same predicate on a one-value row: the answer is the same for every row.
        answer = _compile_pred(rule, {name: 0}, {name})((flags[name],))
        return lambda _row: answer
    return _compile_pred(rule, index, int_fields)


def _compile_pred(pred: Pred, index: Mapping[str, int], int_fields: Collection[str]) -> Matcher:
    name = pred.field.upper()
    if name not in index:
        raise RuleError(f"unknown field {pred.field!r} in selection rule")
    pos = index[name]
    is_int = name in int_fields
    if pred.op is None:
        return lambda row: bool(row[pos])
    if pred.op in ("~", "!~"):
        try:
            patterns = [re.compile(value) for value in pred.values]
        except re.error as exc:
            raise RuleError(f"bad regular expression for {pred.field!r}: {exc}") from exc
        negate = pred.op == "!~"
        return lambda row: any(p.search(str(row[pos])) for p in patterns) != negate
    values: tuple[Any, ...] = (
        tuple(parse_int(value) for value in pred.values) if is_int else pred.values
    )
    if pred.op in ("==", "!="):
        members = frozenset(values)
        if pred.op == "==":
            return lambda row: row[pos] in members
        return lambda row: row[pos] not in members
    compare = _COMPARISONS[pred.op]
    return lambda row: any(compare(row[pos], value) for value in values)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

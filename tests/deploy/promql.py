"""The metric names a PromQL expression reads, found by a small lexer (no Prometheus needed).

Dashboards and alert rules are checked against the metrics the processes really expose, so a
name returned here must be a metric: whatever the reader cannot account for (an unknown function,
an unbalanced bracket, a label matcher of an unexpected shape) raises `ValueError` instead of
being guessed at. Label names (in `{...}`, `by (...)`, `on (...)`...), durations and ranges,
numbers, strings, keywords, functions and Grafana's variables (`$job`, `${datasource}`,
`$__rate_interval`) are not metric names. A metric named only by a regular expression on
`__name__` cannot be listed and is left out.
"""

import re
from dataclasses import dataclass
from typing import Final

# Prometheus 3's functions (promql/parser/functions.go). `start` and `end` are the `@` modifier's
# `@ start()` and `@ end()`.
FUNCTIONS: Final = frozenset(
    {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
        "delta", "deriv", "double_exponential_smoothing", "exp", "first_over_time", "floor",
        "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
        "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
        "increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln",
        "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month",
        "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate",
        "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label",
        "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
        "sum_over_time", "tan", "tanh", "time", "timestamp", "ts_of_first_over_time",
        "ts_of_last_over_time", "ts_of_max_over_time", "ts_of_min_over_time", "vector", "year",
        "start", "end",
    }
)  # fmt: skip
AGGREGATIONS: Final = frozenset(
    {
        "avg", "bottomk", "count", "count_values", "group", "limit_ratio", "limitk", "max", "min",
        "quantile", "stddev", "stdvar", "sum", "topk",
    }
)  # fmt: skip
# Keywords followed by a parenthesised list of label names (optional after group_left/right).
LABEL_LIST_KEYWORDS: Final = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right"}
)
# Binary operators and modifiers spelled as words; PromQL's keywords ignore case. `anchored`
# and `smoothed` are Prometheus 3's experimental range modifiers (`rate(x[5m] smoothed)`).
WORD_KEYWORDS: Final = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "anchored", "smoothed"}
)
NUMBER_WORDS: Final = frozenset({"inf", "nan"})
MATCH_OPERATORS: Final = frozenset({"=", "!=", "=~", "!~"})

_TOKEN: Final = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$\{[^}]*\}|\$\w+)
    | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z0-9]*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<open>[(\[{])
    | (?P<close>[)\]}])
    | (?P<op>==|!=|=~|!~|<=|>=|[-+*/%^<>=,@:])
    """,
    re.VERBOSE,
)
_CLOSING: Final = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    position: int


def tokenize(expr: str) -> list[Token]:
    """The expression's tokens, less spaces and comments; an unknown character is an error."""
    tokens: list[Token] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"unexpected {expr[position]!r} at {position} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None  # every alternative is a named group
        if kind not in {"space", "comment"}:
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` reads; `ValueError` when the expression cannot be accounted for."""
    return _Reader(expr).read()


def variable_metric_names(query: str) -> set[str]:
    """The metric names a Grafana Prometheus variable query reads: `label_values(label)`,
    `label_values(selector, label)` or `query_result(expr)`."""
    match = re.fullmatch(r"\s*(label_values|query_result)\s*\((.*)\)\s*", query, re.DOTALL)
    if match is None:
        raise ValueError(f"not a variable query this reader knows: {query!r}")
    function, argument = match.groups()
    if function == "query_result":
        return metric_names(argument)
    selector, _, label = argument.rpartition(",")
    if re.fullmatch(r"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*", label) is None:
        raise ValueError(f"label_values needs a label name last: {query!r}")
    return metric_names(selector) if selector.strip() else set()


class _Reader:
    """One pass over the tokens, tracking brackets; names are collected as they are met."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.index = 0
        self.open: list[Token] = []
        self.names: set[str] = set()

    def read(self) -> set[str]:
        while self.index < len(self.tokens):
            token = self.tokens[self.index]
            self.index += 1
            if token.kind == "ident":
                self._identifier(token)
            elif token.text == "{":
                self._selector(token)
            elif token.text == "[":
                self._group(token)  # a range or subquery: durations and variables only
            elif token.text == "(":
                self.open.append(token)
            elif token.kind == "close":
                self._close(token)
        if self.open:
            raise self._error(self.open[-1], "is never closed")
        return self.names

    def _peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _error(self, token: Token, problem: str) -> ValueError:
        return ValueError(f"{token.text!r} at {token.position} {problem} in {self.expr!r}")

    def _close(self, token: Token) -> None:
        if not self.open or _CLOSING[self.open[-1].text] != token.text:
            raise self._error(token, "closes nothing open")
        self.open.pop()

    def _identifier(self, token: Token) -> None:
        word = token.text.lower()
        after = self._peek()
        calls = after is not None and after.text == "("
        if word in NUMBER_WORDS or word in WORD_KEYWORDS:
            return
        if word in LABEL_LIST_KEYWORDS:
            if after is not None and after.text == "(":
                self.index += 1
                self._label_list(after)
            return
        if word in AGGREGATIONS:
            # `sum (x)`, `sum by (le) (x)` or `sum without (a) (x)`; a bare `sum` is not PromQL.
            if not calls and (after is None or after.text.lower() not in {"by", "without"}):
                raise self._error(token, "is an aggregation without its argument")
            return
        if calls:
            if token.text not in FUNCTIONS:
                raise self._error(token, "is not a PromQL function")
            return
        self.names.add(token.text)

    def _label_list(self, opening: Token) -> None:
        """`(label, label, ...)` after by/without/on/ignoring/group_left/group_right."""
        for token in self._group(opening):
            if token.kind not in {"ident", "string"} and token.text != ",":
                raise self._error(token, "is not a label name")

    def _selector(self, opening: Token) -> None:
        """`{matcher, ...}`: label matchers, `__name__="x"`, or a quoted metric name."""
        matchers: list[list[Token]] = [[]]
        for token in self._group(opening):
            if token.text == "," or (token.kind == "ident" and token.text.lower() == "or"):
                matchers.append([])
            else:
                matchers[-1].append(token)
        for matcher in matchers:
            self._matcher(opening, matcher)

    def _matcher(self, opening: Token, matcher: list[Token]) -> None:
        if not matcher:
            return  # `{}` or a trailing comma
        if len(matcher) == 1 and matcher[0].kind == "string":
            self.names.add(_unquote(matcher[0].text))
            return
        shape_ok = (
            len(matcher) == 3
            and matcher[0].kind in {"ident", "string"}
            and matcher[1].text in MATCH_OPERATORS
            and matcher[2].kind == "string"
        )
        if not shape_ok:
            raise self._error(opening, "opens a label matcher this reader cannot read")
        label, operator, value = matcher
        if _unquote(label.text) == "__name__" and operator.text == "=":
            self.names.add(_unquote(value.text))

    def _group(self, opening: Token) -> list[Token]:
        """The tokens up to the bracket closing `opening` (no nesting allowed inside)."""
        inside: list[Token] = []
        while (token := self._peek()) is not None:
            self.index += 1
            if token.text == _CLOSING[opening.text]:
                return inside
            if token.kind in {"open", "close"}:
                raise self._error(token, f"is not allowed inside {opening.text}")
            inside.append(token)
        raise self._error(opening, "is never closed")


def _unquote(text: str) -> str:
    if text[:1] in {'"', "'", "`"}:
        body = text[1:-1]
        return body if text[0] == "`" else re.sub(r"\\(.)", r"\1", body)
    return text

"""`metric_names`: the metric names a PromQL expression reads, and nothing that is not one."""

import pytest

from tests.deploy.promql import metric_names, variable_metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        # Functions, aggregations, numbers, grouping labels and durations are not metrics.
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
            {"x_bucket"},
        ),
        ("histogram_quantile(0.5, sum(rate(x_bucket[5m])) by (le, instance))", {"x_bucket"}),
        # Matching modifiers name labels; group_left without a list is followed by a metric.
        ("a / on(job) group_left b", {"a", "b"}),
        ("a * on (job, instance) group_left (version) b", {"a", "b"}),
        ("a and ignoring(x) group_right(y, z) b", {"a", "b"}),
        ("a > bool 0.5", {"a"}),
        ("a or on() vector(0)", {"a"}),
        ("a unless b", {"a", "b"}),
        # Matchers: label names and values, including regexes with brackets, are not metrics.
        ('x{kind="stale"}', {"x"}),
        ('x{kind=~"out_of_order|sequence_regression", topic!~".*-changelog"}', {"x"}),
        ('rate(x_total{status=~"[45].."}[$__rate_interval])', {"x_total"}),
        ('{__name__="named_by_matcher", job="j"}', {"named_by_matcher"}),
        ('{"dotted.name", job="j"}', {"dotted.name"}),
        ('{__name__=~"ticklane_.+"}', set()),  # a regex names no one metric
        ("sum without (instance) (y)", {"y"}),
        ("SUM BY (le) (y)", {"y"}),  # PromQL's keywords ignore case
        ("vector(0)", set()),
        ("absent(z)", {"z"}),
        ("time() - process_start_time_seconds", {"process_start_time_seconds"}),
        # A function's name used without a call is a metric of that name.
        ("rate", {"rate"}),
        # Grafana's variables, ranges, subqueries, offsets and @ are not metrics.
        (
            'sum(rate(foo_total{job=~"$job", instance=~"${instance}"}[$__rate_interval]))',
            {"foo_total"},
        ),
        ("max_over_time(rate(x[5m])[1h:1m]) offset -5m", {"x"}),
        ("x @ start() + y @ 1609746000", {"x", "y"}),
        ('topk(5, c) + quantile(0.9, d) + count_values("v", e)', {"c", "d", "e"}),
        ('label_replace(up, "dst", "$1", "instance", "(.*):.*")', {"up"}),
        ("1e-3 * a + 0x1F + Inf - NaN", {"a"}),
        ("recorded:rule:rate5m", {"recorded:rule:rate5m"}),
        ("a # a comment naming not_a_metric\n + b", {"a", "b"}),
    ],
)
def test_metric_names(expr, names):
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    "expr",
    [
        "rat(x)",  # not a function: never a metric called "rat"
        "label_values(up, job)",  # Grafana's, not PromQL
        "sum",  # an aggregation needs its argument
        "x{kind}",  # a matcher without operator and value
        "x{kind=stale}",  # an unquoted value
        "(x",
        "x)",
        "x[5m",
        "rate(x[5m)]",
        "a ; b",
    ],
)
def test_what_it_cannot_account_for_is_an_error_not_a_name(expr):
    with pytest.raises(ValueError, match=r"."):
        metric_names(expr)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("label_values(up, job)", {"up"}),
        ("label_values(job)", set()),
        ('label_values(x{job=~"$job", a="b,c"}, instance)', {"x"}),
        ('label_values({__name__=~"ticklane_.+"}, job)', set()),
        ("query_result(sum by (job) (w))", {"w"}),
    ],
)
def test_variable_metric_names(query, names):
    assert variable_metric_names(query) == names


@pytest.mark.parametrize("query", ["metrics(ticklane_.*)", "label_values(up, )"])
def test_variable_queries_it_cannot_read_are_errors(query):
    with pytest.raises(ValueError, match=r"."):
        variable_metric_names(query)

//! Reads the chart's Grafana dashboard as Grafana would: every Prometheus query (panel targets and
//! template variables) with the metric and label names it uses, and every CloudWatch query. The
//! tests hold these against what the operator really exports and reads.

use std::collections::BTreeMap;

use serde_json::Value;

/// The dashboard as the chart ships it.
#[must_use]
pub fn shipped() -> Value {
    let path = crate::workspace_root().join("charts/blog-operator/dashboards/blog-operator.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the chart ships its dashboard")).expect("JSON")
}

/// One CloudWatch query: namespace, metric, dimension name to value, statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchQuery {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub statistic: String,
}

fn targets(dashboard: &Value) -> impl Iterator<Item = &Value> {
    dashboard["panels"].as_array().into_iter().flatten().flat_map(|p| p["targets"].as_array().into_iter().flatten())
}

fn is_of(target: &Value, kind: &str) -> bool {
    target["datasource"]["type"] == kind
}

/// Every Prometheus query: panel expressions with their legends, and query variables.
#[must_use]
pub fn prometheus_queries(dashboard: &Value) -> Vec<String> {
    let panels = targets(dashboard)
        .filter(|t| is_of(t, "prometheus"))
        .map(|t| format!("{} {}", t["expr"].as_str().unwrap_or(""), t["legendFormat"].as_str().unwrap_or("")));
    let variables = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .map(|v| v["definition"].as_str().unwrap_or("").to_owned());
    panels.chain(variables).collect()
}

/// Every CloudWatch query of the panels.
#[must_use]
pub fn cloudwatch_queries(dashboard: &Value) -> Vec<CloudWatchQuery> {
    targets(dashboard)
        .filter(|t| is_of(t, "cloudwatch"))
        .map(|t| CloudWatchQuery {
            namespace: t["namespace"].as_str().unwrap_or("").to_owned(),
            metric: t["metricName"].as_str().unwrap_or("").to_owned(),
            dimensions: t["dimensions"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect(),
            statistic: t["statistic"].as_str().unwrap_or("").to_owned(),
        })
        .collect()
}

/// The names of the template variables a query variable defines from the operator's metrics.
#[must_use]
pub fn variables(dashboard: &Value) -> Vec<String> {
    let list = dashboard["templating"]["list"].as_array().into_iter().flatten();
    list.filter_map(|v| v["name"].as_str().map(str::to_owned)).collect()
}

fn identifiers(text: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        let part = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (part, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                found.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    found
}

/// The operator's metric names a query uses.
#[must_use]
pub fn metric_names(query: &str) -> Vec<String> {
    identifiers(query).into_iter().filter(|(_, id)| id.starts_with("blog_operator_")).map(|(_, id)| id.into()).collect()
}

/// The label names a query uses: in selectors (`{a="x"}`), groupings (`by (a, b)`), the second
/// argument of `label_values(…, a)` and legends (`{{a}}`).
#[must_use]
pub fn label_names(query: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut rest = query;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let (inside, tail) = if let Some(legend) = after.strip_prefix('{') {
            let end = legend.find("}}").unwrap_or(legend.len());
            (&legend[..end], &legend[end.min(legend.len())..])
        } else {
            let end = after.find('}').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        for pair in inside.split(',') {
            let name = pair.split(['=', '!']).next().unwrap_or("").trim();
            if !name.is_empty() && !name.starts_with('$') {
                labels.push(name.to_owned());
            }
        }
        rest = tail;
    }
    for keyword in ["by (", "without ("] {
        for (at, _) in query.match_indices(keyword) {
            let inside = &query[at + keyword.len()..];
            let end = inside.find(')').unwrap_or(inside.len());
            labels.extend(inside[..end].split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()));
        }
    }
    if let Some(label) =
        query.strip_prefix("label_values(").and_then(|args| args.trim_end_matches(')').rsplit(',').next())
    {
        labels.push(label.trim().to_owned());
    }
    labels.sort();
    labels.dedup();
    labels
}

/// What in the dashboard's Prometheus queries names a metric or label the given families (metric
/// name to label names, as exported) do not have. Empty when every query reads real series.
#[must_use]
pub fn unknown_prometheus_names(dashboard: &Value, families: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    for query in prometheus_queries(dashboard) {
        let metrics = metric_names(&query);
        if metrics.is_empty() {
            problems.push(format!("{query}: reads no operator metric"));
        }
        let mut known: Vec<&str> = vec!["le"];
        for metric in &metrics {
            let family = families.get(metric.as_str()).or_else(|| {
                // A histogram's series: `_bucket`, `_sum`, `_count` of its family.
                let base = metric.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
                families.get(base)
            });
            match family {
                Some(labels) => known.extend(labels.iter().map(String::as_str)),
                None => problems.push(format!("{query}: no metric {metric}")),
            }
        }
        for label in label_names(&query) {
            if !known.contains(&label.as_str()) {
                problems.push(format!("{query}: no label {label} on {metrics:?}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_their_metrics_and_labels() {
        let query = r#"sum by (service, operation) (rate(blog_operator_aws_calls_total{outcome!="ok",x=~"$v"}[5m])) {{service}}"#;
        assert_eq!(metric_names(query), vec!["blog_operator_aws_calls_total"]);
        assert_eq!(label_names(query), vec!["operation", "outcome", "service", "x"]);
        assert_eq!(
            label_names(r#"label_values(blog_operator_x{namespace="$namespace"}, name)"#),
            vec!["name", "namespace"]
        );
    }

    #[test]
    fn a_misspelt_label_or_metric_is_found() {
        let dashboard = serde_json::json!({"panels": [{"targets": [
            {"datasource": {"type": "prometheus"}, "expr": "sum by (reasn) (blog_operator_a_total)", "legendFormat": ""},
            {"datasource": {"type": "prometheus"}, "expr": "blog_operator_b", "legendFormat": "{{x}}"}
        ]}]});
        let families = BTreeMap::from([("blog_operator_a_total".to_owned(), vec!["reason".to_owned()])]);
        let problems = unknown_prometheus_names(&dashboard, &families);
        for expected in ["no label reasn", "no metric blog_operator_b", "no label x"] {
            assert!(problems.iter().any(|p| p.contains(expected)), "{expected} not in {problems:?}");
        }
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn the_shipped_dashboard_has_queries_of_both_kinds() {
        let dashboard = shipped();
        assert!(prometheus_queries(&dashboard).len() >= 10);
        assert!(cloudwatch_queries(&dashboard).len() >= 6);
    }
}

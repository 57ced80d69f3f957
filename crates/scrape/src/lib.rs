//! Reading the OpenMetrics expositions of tmirror's `/metrics` endpoints in tests.
//!
//! The text is parsed by a real parser, strictly, so a test fails on an exposition that a
//! Prometheus server would refuse (a family without its TYPE, a sample out of its family, a
//! missing `# EOF`), and samples are found by family name and their exact set of labels rather
//! than by matching lines of text.

use std::collections::BTreeMap;

use openmetrics_parser::{
    openmetrics::parse_openmetrics, MetricFamily, MetricsExposition, OpenMetricsType,
    OpenMetricsValue,
};

type Family = MetricFamily<OpenMetricsType, OpenMetricsValue>;

/// One parsed exposition.
#[derive(Debug)]
pub struct Scrape {
    exposition: MetricsExposition<OpenMetricsType, OpenMetricsValue>,
}

/// One sample: its labels and its value (a counter's total, a gauge's value, a histogram's
/// count).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Scrape {
    /// Parses `text`; the parser's complaint and the text when it is not valid OpenMetrics.
    pub fn parse(text: &str) -> Result<Scrape, String> {
        parse_openmetrics(text)
            .map(|exposition| Scrape { exposition })
            .map_err(|e| format!("not a valid OpenMetrics exposition ({e:?}):\n{text}"))
    }

    /// Like [`Scrape::parse`], for tests that have nothing to do with an invalid exposition.
    pub fn of(text: &str) -> Scrape {
        Scrape::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The family called `name`; a counter may be named with its sample's `_total` suffix.
    fn family(&self, name: &str) -> Option<&Family> {
        let families = &self.exposition.families;
        families.get(name).or_else(|| {
            let family = families.get(name.strip_suffix("_total")?)?;
            (family.family_type == OpenMetricsType::Counter).then_some(family)
        })
    }

    /// The type of the family `name`, if exposed.
    pub fn kind(&self, name: &str) -> Option<OpenMetricsType> {
        self.family(name).map(|f| f.family_type)
    }

    /// Every sample of the family `name` (none when it is not exposed).
    pub fn samples(&self, name: &str) -> Vec<Sample> {
        let Some(family) = self.family(name) else {
            return Vec::new();
        };
        family
            .iter_samples()
            .map(|s| Sample {
                labels: s
                    .get_labelset()
                    .map(|set| set.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                value: value_of(&s.value),
            })
            .collect()
    }

    /// Every sample of every family, with its family's name.
    pub fn all(&self) -> Vec<(String, Sample)> {
        self.exposition
            .families
            .keys()
            .flat_map(|name| {
                self.samples(name)
                    .into_iter()
                    .map(move |s| (name.clone(), s))
            })
            .collect()
    }

    /// The value of the sample of `name` whose labels are exactly `labels`, if exposed.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples(name)
            .into_iter()
            .find(|s| s.labels == wanted)
            .map(|s| s.value)
    }

    /// The sum of the values of the samples of `name` that carry every label of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name)
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

fn value_of(value: &OpenMetricsValue) -> f64 {
    match value {
        OpenMetricsValue::Unknown(n)
        | OpenMetricsValue::Gauge(n)
        | OpenMetricsValue::StateSet(n) => n.as_f64(),
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        OpenMetricsValue::Histogram(h) | OpenMetricsValue::GaugeHistogram(h) => {
            h.count.map_or(f64::NAN, |c| c as f64)
        }
        OpenMetricsValue::Summary(s) => s.count.map_or(f64::NAN, |c| c as f64),
        OpenMetricsValue::Info => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP tmirror_requests Requests answered.
# TYPE tmirror_requests counter
tmirror_requests_total{face="huawei",action="GET /v3/{project_id}/vpc/x",status="200"} 3
tmirror_requests_total{face="aliyun",action="DescribeX",status="200"} 1
# HELP tmirror_agents Agents.
# TYPE tmirror_agents gauge
tmirror_agents 2
# EOF
"#;

    #[test]
    fn samples_are_found_by_name_and_exact_labels() {
        let s = Scrape::of(TEXT);
        let huawei = [
            ("face", "huawei"),
            ("action", "GET /v3/{project_id}/vpc/x"),
            ("status", "200"),
        ];
        assert_eq!(s.value("tmirror_requests_total", &huawei), Some(3.0));
        assert_eq!(s.value("tmirror_requests", &huawei), Some(3.0));
        assert_eq!(s.value("tmirror_requests_total", &huawei[..2]), None);
        assert_eq!(s.sum("tmirror_requests_total", &[("status", "200")]), 4.0);
        assert_eq!(s.value("tmirror_agents", &[]), Some(2.0));
        assert_eq!(s.kind("tmirror_agents"), Some(OpenMetricsType::Gauge));
        assert_eq!(s.value("tmirror_missing", &[]), None);
        assert_eq!(s.all().len(), 3);
    }

    #[test]
    fn an_invalid_exposition_is_refused() {
        assert!(Scrape::parse(TEXT.trim_end_matches("# EOF\n")).is_err());
        assert!(Scrape::parse("tmirror_agents{ 2\n# EOF\n").is_err());
    }
}

//! The connector matrix is one table: `releasepassport connectors` (text and
//! JSON), the console's Integrations page and docs/connectors.md show the
//! same rows with the same statuses, every row of the product's original
//! matrix is there, and a provider is native only when its adapter is
//! implemented and has a test.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use releasepassport::api::{ConnectorKind, ConnectorSupport};
use releasepassport::connectors::{self, matrix};
use serde_json::Value;

fn repo(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(args)
        .output()
        .expect("running releasepassport");
    assert!(
        out.status.success(),
        "releasepassport {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// (connector, category, status, kinds, credential, evidence) of every row.
type Cells = Vec<[String; 6]>;

fn cells_of_json(rows: &Value) -> Cells {
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| {
            let s = |k: &str| {
                r[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {r}"))
                    .to_string()
            };
            let kinds: Vec<&str> = r["connectorKinds"]
                .as_array()
                .expect("connectorKinds")
                .iter()
                .map(|k| k.as_str().expect("kind"))
                .collect();
            [
                s("connector"),
                s("category"),
                s("status"),
                kinds.join(", "),
                s("credential"),
                s("evidence"),
            ]
        })
        .collect()
}

/// Rows of a Markdown table: cells trimmed, backticks and dashes-for-empty dropped.
fn markdown_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .skip(1)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace(['`', '—'], ""))
                .collect()
        })
        .collect()
}

fn docs_table() -> String {
    let docs = repo("docs/connectors.md");
    let begin = docs
        .find("<!-- BEGIN connector matrix")
        .expect("docs/connectors.md has the matrix markers");
    let body = &docs[begin..];
    let body = &body[body.find('\n').expect("marker line") + 1..];
    let end = body.find("<!-- END connector matrix").expect("end marker");
    body[..end].to_string()
}

#[test]
fn json_lists_every_row_of_the_seed_matrix() {
    let json: Value = serde_json::from_str(&cli(&["connectors", "--output", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    let seed = markdown_rows(&repo("tests/fixtures/seed-connector-matrix.md"));
    assert_eq!(seed.len(), 23, "the seed matrix has 23 rows");
    for s in &seed {
        let row = rows
            .iter()
            .find(|r| r["connector"] == s[0].as_str())
            .unwrap_or_else(|| panic!("seed row {} missing from `connectors --output json`", s[0]));
        assert_eq!(row["category"], s[1].as_str(), "{}", s[0]);
        assert_eq!(row["seed"], true, "{}", s[0]);
    }
    assert_eq!(
        rows.iter().filter(|r| r["seed"] == true).count(),
        seed.len(),
        "only seed rows are marked seed"
    );
    // Every row's status is one of the matrix's, in words and as the
    // ConnectorScope status value.
    for r in rows {
        let support: ConnectorSupport =
            serde_json::from_value(r["support"].clone()).expect("support value");
        assert_eq!(r["status"], support.label());
    }
}

#[test]
fn cli_text_json_docs_and_console_show_the_same_table() {
    let json: Value = serde_json::from_str(&cli(&["connectors", "--output", "json"])).unwrap();
    let from_json = cells_of_json(&json);
    assert_eq!(from_json.len(), matrix::ROWS.len());

    // Text: one line per row, in order, starting with the connector and
    // carrying its status.
    let text = cli(&["connectors"]);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), from_json.len());
    for (line, row) in lines.iter().zip(&from_json) {
        assert!(line.starts_with(&row[0]), "{line:?} vs {}", row[0]);
        assert!(line.contains(&row[2]), "{line:?} lacks status {}", row[2]);
    }

    // Markdown output and the docs.
    let markdown = cli(&["connectors", "--output", "markdown"]);
    assert_eq!(
        docs_table(),
        markdown,
        "docs/connectors.md is out of date: paste `releasepassport connectors --output markdown` between its markers"
    );
    let from_docs: Cells = markdown_rows(&markdown)
        .into_iter()
        .map(|c| c.try_into().expect("six columns"))
        .collect();
    assert_eq!(from_docs, from_json);

    // The console's Integrations page.
    let state = releasepassport::console::state::ConsoleState::from_objects(
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        Default::default(),
    );
    let html = releasepassport::console::views::integrations::render(&state, &BTreeSet::new())
        .into_string();
    let table = &html[html.find("id=\"matrix\"").expect("matrix table")..];
    let table = &table[..table.find("</table>").expect("table end")];
    let from_console: Cells = table
        .split("<tr>")
        .skip(2) // before the header row, the header row
        .map(|tr| {
            let cells: Vec<String> = tr
                .split("<td")
                .skip(1)
                .map(|td| {
                    let inner = &td[td.find('>').expect("td") + 1..];
                    let inner = &inner[..inner.find("</td>").expect("td end")];
                    strip_tags(inner)
                })
                .collect();
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[4].clone(),
                cells[5].clone(),
            ]
        })
        .collect();
    assert_eq!(from_console, from_json);
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&").trim().to_string()
}

/// Where each implemented adapter is proven against a real or replayed
/// source. Wiring an adapter without naming its test here fails below.
const ADAPTER_TESTS: &[(ConnectorKind, &str)] = &[
    (ConnectorKind::Kubernetes, "tests/cluster_controller.rs"),
    (ConnectorKind::Argocd, "tests/cluster_argocd.rs"),
    (ConnectorKind::Prometheus, "tests/connectors_prometheus.rs"),
    (ConnectorKind::Http, "tests/connectors_http.rs"),
    (ConnectorKind::Pagerduty, "tests/connectors_pagerduty.rs"),
    (ConnectorKind::Jira, "tests/connectors_jira.rs"),
    (ConnectorKind::Opsgenie, "tests/connectors_opsgenie.rs"),
    (ConnectorKind::Servicenow, "tests/connectors_servicenow.rs"),
    (ConnectorKind::Linear, "tests/connectors_linear.rs"),
    (ConnectorKind::Sentry, "tests/connectors_sentry.rs"),
    (ConnectorKind::Slack, "tests/connectors_slack.rs"),
    (ConnectorKind::Email, "tests/connectors_email.rs"),
    // Pipelines, quality, observability and rollouts.
    (
        ConnectorKind::Gitlab,
        "tests/cluster_connector_providers.rs",
    ),
    (
        ConnectorKind::Jenkins,
        "tests/cluster_connector_providers.rs",
    ),
    (
        ConnectorKind::GithubActions,
        "tests/cluster_connector_providers.rs",
    ),
    (
        ConnectorKind::Sonarqube,
        "tests/cluster_connector_providers.rs",
    ),
    (ConnectorKind::Snyk, "tests/cluster_connector_providers.rs"),
    (
        ConnectorKind::Datadog,
        "tests/cluster_connector_providers.rs",
    ),
    (
        ConnectorKind::Newrelic,
        "tests/cluster_connector_providers.rs",
    ),
    (
        ConnectorKind::Launchdarkly,
        "tests/cluster_connector_providers.rs",
    ),
    (ConnectorKind::Loki, "tests/cluster_connector_providers.rs"),
    (
        ConnectorKind::Elasticsearch,
        "tests/cluster_connector_providers.rs",
    ),
    (ConnectorKind::Opensearch, "tests/connectors_opensearch.rs"),
    (ConnectorKind::ArgoRollouts, "tests/cluster_rollouts.rs"),
    (ConnectorKind::Flagger, "tests/cluster_rollouts.rs"),
    (ConnectorKind::Flux, "tests/cluster_rollouts.rs"),
    // Radar: journey checks and third-party status.
    (ConnectorKind::Journey, "tests/cluster_radar.rs"),
    (ConnectorKind::Statuspage, "tests/cluster_radar.rs"),
];

#[test]
fn a_provider_is_native_only_when_its_adapter_is_implemented_and_tested() {
    let wired: BTreeSet<&str> = ConnectorKind::ALL
        .iter()
        .filter(|k| connectors::adapter(**k).is_some())
        .map(|k| k.as_str())
        .collect();
    let tested: BTreeSet<&str> = ADAPTER_TESTS.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        wired, tested,
        "every adapter names its test, and only adapters do"
    );
    for (kind, file) in ADAPTER_TESTS {
        let text = repo(file);
        assert!(
            text.contains(&format!("connector\": \"{}\"", kind.as_str()))
                || text.contains(&format!("connectorscope-{}.yaml", kind.as_str())),
            "{file} does not set up a {kind} ConnectorScope"
        );
    }
    for row in matrix::ROWS {
        let native = matches!(
            row.status(),
            ConnectorSupport::NativePull | ConnectorSupport::RequiresCredential
        );
        let all_wired =
            !row.kinds().is_empty() && row.kinds().iter().all(|k| wired.contains(k.as_str()));
        if native {
            assert!(all_wired, "{} is native without an adapter", row.connector);
        }
    }
}

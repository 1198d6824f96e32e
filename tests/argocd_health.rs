//! The Argo CD health checks of `config/argocd/resource_customizations/`,
//! run the way Argo CD runs them: every case of each `health_test.yaml`, under
//! a real Lua 5.1 interpreter (`lua5.1`, or `$RP_LUA`; `make deps` installs
//! it), with the test data as the global-free `obj` argument.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const ROOT: &str = "config/argocd/resource_customizations/releasepassport.io";
/// Every kind with a health check.
const KINDS: [&str; 4] = [
    "ReleaseGate",
    "Passport",
    "ReleaseApproval",
    "ReleaseWaiver",
];

#[derive(Debug, Deserialize)]
struct HealthTests {
    tests: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    health_status: HealthStatus,
    input_path: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct HealthStatus {
    status: String,
    message: String,
}

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Lua string literal.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b}")),
        }
    }
    out.push('"');
    out
}

/// A Lua table literal of a JSON value, as Argo CD hands objects to Lua
/// (null members are absent, lists are 1-based arrays).
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter(|i| !i.is_null()).map(lua).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn interpreter() -> String {
    std::env::var("RP_LUA").unwrap_or_else(|_| "lua5.1".into())
}

/// Runs a health.lua on one object and returns what it says.
fn run_health(script: &str, obj: &Value) -> HealthStatus {
    let program = format!(
        "local function health(obj)\n{script}\nend\nlocal hs = health({})\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua(obj)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("health.lua");
    std::fs::write(&file, program).expect("write lua");
    let out = Command::new(interpreter())
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e} (install Lua 5.1: bash hack/install-deps.sh lua)",
                interpreter()
            )
        });
    assert!(
        out.status.success(),
        "lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, message) = text.split_once('\n').expect("status and message");
    HealthStatus {
        status: status.into(),
        message: message.into(),
    }
}

fn run_kind(kind: &str) -> Vec<(String, HealthStatus)> {
    let dir = repo(&format!("{ROOT}/{kind}"));
    let script = std::fs::read_to_string(dir.join("health.lua")).expect("health.lua");
    let tests: HealthTests =
        serde_json::from_value(yaml(&dir.join("health_test.yaml"))).expect("health_test.yaml");
    assert!(!tests.tests.is_empty());
    // Every test data file is used by a case.
    let mut unused: Vec<String> = std::fs::read_dir(dir.join("testdata"))
        .expect("testdata")
        .filter_map(|e| e.ok())
        .map(|e| format!("testdata/{}", e.file_name().to_string_lossy()))
        .filter(|f| !tests.tests.iter().any(|c| &c.input_path == f))
        .collect();
    unused.sort();
    assert!(
        unused.is_empty(),
        "{kind}: test data without a case: {unused:?}"
    );

    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for case in &tests.tests {
        let obj = yaml(&dir.join(&case.input_path));
        let got = run_health(&script, &obj);
        if got != case.health_status {
            failures.push(format!(
                "{kind} {}: expected {:?}, got {:?}",
                case.input_path, case.health_status, got
            ));
        }
        seen.push((case.input_path.clone(), got));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    seen
}

fn statuses(cases: &[(String, HealthStatus)]) -> Vec<&str> {
    let mut s: Vec<&str> = cases.iter().map(|(_, h)| h.status.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s
}

#[test]
fn release_gate_health_cases_pass_under_lua_5_1() {
    let cases = run_kind("ReleaseGate");
    assert_eq!(
        statuses(&cases),
        ["Degraded", "Healthy", "Progressing", "Suspended"]
    );
    // The old release's ALLOW never reads as Healthy once a new generation is applied.
    let stale = cases
        .iter()
        .find(|(f, _)| f == "testdata/stale-generation.yaml")
        .expect("stale case");
    assert_eq!(stale.1.status, "Progressing");
}

#[test]
fn passport_health_cases_pass_under_lua_5_1() {
    let cases = run_kind("Passport");
    assert_eq!(
        statuses(&cases),
        ["Degraded", "Healthy", "Progressing", "Suspended"]
    );
}

#[test]
fn release_approval_health_cases_pass_under_lua_5_1() {
    let cases = run_kind("ReleaseApproval");
    assert_eq!(statuses(&cases), ["Degraded", "Healthy", "Progressing"]);
}

#[test]
fn release_waiver_health_cases_pass_under_lua_5_1() {
    let cases = run_kind("ReleaseWaiver");
    assert_eq!(statuses(&cases), ["Degraded", "Healthy", "Progressing"]);
    // An expired waiver reads as Degraded with what to do.
    let expired = cases
        .iter()
        .find(|(f, _)| f == "testdata/expired.yaml")
        .expect("expired case");
    assert!(expired.1.message.contains("expired at"), "{:?}", expired.1);
}

#[test]
fn every_grant_state_has_a_case() {
    use releasepassport::api::GrantState;
    let states: &[(&str, &[GrantState])] = &[
        (
            "ReleaseApproval",
            &[GrantState::Counted, GrantState::NotCounted],
        ),
        (
            "ReleaseWaiver",
            &[
                GrantState::Counted,
                GrantState::Expired,
                GrantState::NotCounted,
            ],
        ),
    ];
    for (kind, states) in states {
        let dir = repo(&format!("{ROOT}/{kind}/testdata"));
        for state in *states {
            let found = std::fs::read_dir(&dir)
                .expect("testdata")
                .flatten()
                .any(|e| yaml(&e.path())["status"]["state"] == state.as_str());
            assert!(found, "{kind}: no test data with state {}", state.as_str());
        }
    }
}

#[test]
fn every_decision_has_a_case_for_both_kinds() {
    for kind in ["ReleaseGate", "Passport"] {
        let dir = repo(&format!("{ROOT}/{kind}/testdata"));
        for decision in releasepassport::api::Decision::ALL {
            let needle = format!("decision: {}", decision.as_str());
            let found = std::fs::read_dir(&dir)
                .expect("testdata")
                .filter_map(|e| e.ok())
                .any(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.trim() == needle)
                });
            assert!(found, "{kind}: no test data with {needle}");
        }
    }
}

#[test]
fn test_data_are_valid_objects_of_the_api() {
    use releasepassport::api::{Passport, ReleaseApproval, ReleaseGate, ReleaseWaiver};
    for kind in KINDS {
        let dir = repo(&format!("{ROOT}/{kind}/testdata"));
        for entry in std::fs::read_dir(&dir).expect("testdata").flatten() {
            let path = entry.path();
            let value = yaml(&path);
            let result = match kind {
                "ReleaseGate" => serde_json::from_value::<ReleaseGate>(value).map(|_| ()),
                "ReleaseApproval" => serde_json::from_value::<ReleaseApproval>(value).map(|_| ()),
                "ReleaseWaiver" => serde_json::from_value::<ReleaseWaiver>(value).map(|_| ()),
                _ if value.get("spec").is_none() => Ok(()),
                _ => serde_json::from_value::<Passport>(value).map(|_| ()),
            };
            result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn argocd_cm_snippet_embeds_the_health_checks_verbatim() {
    let cm = yaml(&repo("config/argocd/argocd-cm.yaml"));
    for kind in KINDS {
        let key = format!("resource.customizations.health.releasepassport.io_{kind}");
        let embedded = cm["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm: data.{key} missing"));
        let script =
            std::fs::read_to_string(repo(&format!("{ROOT}/{kind}/health.lua"))).expect("lua");
        assert_eq!(
            embedded.trim_end(),
            script.trim_end(),
            "argocd-cm data.{key} differs from {ROOT}/{kind}/health.lua"
        );
    }
}

fn wave(obj: &Value) -> i64 {
    obj["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

#[test]
fn example_application_gates_the_deployment_wave_behind_the_release_gate() {
    let dir = repo("examples/argocd/manifests");
    let mut objects: Vec<Value> = std::fs::read_dir(&dir)
        .expect("manifests")
        .flatten()
        .map(|e| yaml(&e.path()))
        .collect();
    objects.sort_by_key(wave);
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in examples/argocd/manifests"))
    };
    let (gate, deployment, policy) = (find("ReleaseGate"), find("Deployment"), find("Policy"));
    assert_eq!(wave(gate), -1);
    assert_eq!(wave(deployment), 0);
    assert!(wave(policy) < wave(gate));
    assert!(wave(find("ConnectorScope")) < wave(gate));
    assert_eq!(
        deployment["metadata"]["labels"]["releasepassport.io/gate"],
        gate["metadata"]["name"]
    );
    let typed: releasepassport::api::ReleaseGate =
        serde_json::from_value(gate.clone()).expect("a ReleaseGate");
    assert_eq!(
        typed.spec.artifact.image,
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .expect("image"),
        "the gate covers the image wave 0 deploys"
    );
    let policy: releasepassport::api::Policy =
        serde_json::from_value(policy.clone()).expect("a Policy");
    releasepassport::engine::compile(&policy.spec)
        .unwrap_or_else(|e| panic!("example policy: {} {}", e.path, e.message));
    let app = yaml(&repo("examples/argocd/application.yaml"));
    assert_eq!(app["spec"]["source"]["path"], "examples/argocd/manifests");
}

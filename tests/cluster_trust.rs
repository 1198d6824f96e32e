//! The trust model end to end, on the real control plane, with real
//! distinct identities holding exactly the shipped roles: the pipeline (a
//! ServiceAccount with a TokenRequest token, `releasepassport-pipeline`),
//! the approvers alice and bob (static token users,
//! `releasepassport-approver`), dave who both releases and approves, and
//! carol, the platform admin (`releasepassport-platform-admin`). The real
//! controller serves the webhook; the apiserver runs the shipped admission
//! policies; kubectl and `releasepassport` are the real binaries.

mod support;

use std::process::Output;

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use serde_json::json;
use support::controller::eventually;
use support::identities::{self as ids, Identity};
use support::webhook::{self as wh, WAIT, stderr};

const GATE: &str = "payment-api-production";
const DEPLOYMENT: &str = "payment-api";

fn image(c: char) -> String {
    format!(
        "registry.example.com/payment-api@sha256:{}",
        c.to_string().repeat(64)
    )
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// The people and the pipeline of one team namespace, with the shipped roles.
struct Team {
    ns: String,
    pipeline: Identity,
    alice: Identity,
    bob: Identity,
    dave: Identity,
    carol: Identity,
}

async fn team(prefix: &str) -> (Client, Team) {
    let client = wh::serve("trust-tests", 5).await;
    let ns = wh::scoped_namespace(&client, prefix).await;
    let pipeline = ids::service_account(&ns, "ci");
    ids::grant(&ns, "releasepassport-pipeline", &pipeline);
    let (alice, bob, dave, carol) = (
        ids::user("alice"),
        ids::user("bob"),
        ids::user("dave"),
        ids::user("carol"),
    );
    ids::grant(&ns, "releasepassport-approver", &alice);
    ids::grant(&ns, "releasepassport-approver", &bob);
    ids::grant(&ns, "releasepassport-approver", &dave);
    ids::grant(&ns, "releasepassport-pipeline", &dave);
    // The platform team administers every namespace.
    let _ = support::kubectl(&[
        "create",
        "clusterrolebinding",
        "releasepassport-platform-admin-carol",
        "--clusterrole",
        "releasepassport-platform-admin",
        "--user",
        "carol",
    ]);
    (
        client,
        Team {
            ns,
            pipeline,
            alice,
            bob,
            dave,
            carol,
        },
    )
}

/// CI evidence: runtime facts under names of CI's own (never a pulled
/// connector's), the incident count and whether the change approval is linked.
fn evidence(error_rate: &str, approval_linked: bool) -> serde_json::Value {
    let observed = jiff::Timestamp::now();
    json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": approval_linked}]}
    ])
}

/// The seed's Policy on CI-pushed facts, without the rule that needs a ready Deployment.
async fn policy(client: &Client, ns: &str, approvers: u32) {
    let mut policy = support::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    if let Some(a) = policy.spec.approval.as_mut() {
        a.required_approvers = Some(approvers);
    }
    let api: Api<Policy> = Api::namespaced(client.clone(), ns);
    api.patch(
        "payment-api-production",
        &PatchParams::apply("trust-tests").force(),
        &Patch::Apply(&policy),
    )
    .await
    .expect("policy");
}

/// The gate (enforce mode), created by the platform admin: carol.
fn create_gate(team: &Team, release: &str, artifact: &str, extra: serde_json::Value) {
    let mut spec = json!({
        "service": "payment-api", "release": release, "environment": "production",
        "mode": "enforce", "policyRef": {"name": "payment-api-production"},
        "artifact": {"image": artifact},
        "rollback": {"release": "v2.17.9", "image": image('9')},
        "target": {"kind": "Deployment", "name": DEPLOYMENT},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    let gate = json!({"apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
                      "metadata": {"name": GATE, "namespace": team.ns}, "spec": spec});
    let out = team
        .carol
        .kubectl_stdin(&["create", "-f", "-"], &gate.to_string());
    assert!(
        out.status.success(),
        "carol creates the gate: {}",
        stderr(&out)
    );
}

/// A merge patch of the gate's spec, as `who`.
fn patch_gate(who: &Identity, ns: &str, spec: serde_json::Value) -> Output {
    let body = json!({"spec": spec}).to_string();
    who.kubectl(&[
        "-n",
        ns,
        "patch",
        "releasegate",
        GATE,
        "--type=merge",
        "-p",
        &body,
    ])
}

fn patched(out: Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", stderr(&out));
}

/// Waits until the gate's status answers its current generation with `decision`.
async fn decided(client: &Client, ns: &str, decision: Decision) -> ReleaseGate {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, &format!("decision {decision}"), || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            let s = g.status.as_ref()?;
            (s.observed_generation == g.metadata.generation && s.decision == Some(decision))
                .then_some(g)
        }
    })
    .await
}

/// The current Passport of the gate.
async fn passport_of(client: &Client, gate: &ReleaseGate) -> Passport {
    let name = gate
        .status
        .as_ref()
        .and_then(|s| s.passport_name.clone())
        .expect("passport name");
    Api::<Passport>::namespaced(
        client.clone(),
        &gate.metadata.namespace.clone().unwrap_or_default(),
    )
    .get(&name)
    .await
    .expect("passport")
}

/// Waits until the gate's history holds an entry of `type_`, and returns it.
async fn history_entry(client: &Client, ns: &str, type_: HistoryType) -> GateHistoryEntry {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, &format!("{type_} in the gate's history"), || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            g.status?.history.into_iter().find(|e| e.type_ == type_)
        }
    })
    .await
}

/// Asserts a refusal whose message contains every needle.
fn refused(out: &Output, what: &str, needles: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "{what} was admitted");
    for needle in needles {
        assert!(err.contains(needle), "{what}: {needle:?} in: {err}");
    }
    eprintln!("{what}: refused: {}", err.trim());
}

fn approval(ns: &str, name: &str, digest: &str, approver: Option<&str>) -> String {
    let approver = approver
        .map(|a| format!(", approver: {a}"))
        .unwrap_or_default();
    format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseApproval\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{gate: {GATE}, release: v2.18.4, digest: \"{digest}\"{approver}}}\n"
    )
}

fn waiver(ns: &str, name: &str, digest: &str, expires_in: i64) -> String {
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(expires_in);
    format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseWaiver\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{gate: {GATE}, ruleId: error-rate, digest: \"{digest}\", reason: \"known flake\", expiresAt: \"{expires}\"}}\n"
    )
}

/// The release binary, as `who`.
fn releasepassport(who: &Identity, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(args)
        .env("KUBECONFIG", &who.kubeconfig)
        .output()
        .expect("running releasepassport")
}

#[tokio::test]
async fn cluster_the_pipeline_cannot_open_the_gate_it_is_gated_by() {
    let (client, t) = team("trust-pipeline").await;
    let ns = t.ns.clone();
    policy(&client, &ns, 1).await;
    create_gate(
        &t,
        "v2.18.4",
        &image('b'),
        json!({"evidence": evidence("2.7%", false)}),
    );
    decided(&client, &ns, Decision::Hold).await;
    // A running, gated Deployment (created by the pipeline before the gate
    // labelled it: images unchanged, nothing to check).
    let out = wh::create_deployment(Some(&t.pipeline), &ns, DEPLOYMENT, &image('1'), None, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let label = format!("{GATE_LABEL}={GATE}");
    let out = t
        .pipeline
        .kubectl(&["-n", &ns, "label", "deployment", DEPLOYMENT, &label]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Approving, also under another user's name: the pipeline holds no right to.
    let out = t.pipeline.kubectl_stdin(
        &["create", "-f", "-"],
        &approval(&ns, "ci-approves", &digest('b'), None),
    );
    refused(
        &out,
        "the pipeline approving",
        &["forbidden", "cannot create resource \"releaseapprovals\""],
    );
    let out = t.pipeline.kubectl_stdin(
        &["create", "-f", "-"],
        &approval(&ns, "ci-as-alice", &digest('b'), Some("alice")),
    );
    refused(
        &out,
        "the pipeline approving as alice",
        &["cannot create resource \"releaseapprovals\""],
    );
    // Even an approver cannot write someone else's name.
    let out = t.alice.kubectl_stdin(
        &["create", "-f", "-"],
        &approval(&ns, "alice-as-bob", &digest('b'), Some("bob")),
    );
    refused(
        &out,
        "alice approving as bob",
        &[
            "ValidatingAdmissionPolicy 'releasepassport-approvals'",
            "[rule approver-is-requester]",
        ],
    );

    // Adding or extending a waiver.
    let out = t.pipeline.kubectl_stdin(
        &["create", "-f", "-"],
        &waiver(&ns, "ci-waives", &digest('b'), 3600),
    );
    refused(
        &out,
        "the pipeline waiving",
        &["cannot create resource \"releasewaivers\""],
    );
    let out = t.bob.kubectl_stdin(
        &["create", "-f", "-"],
        &waiver(&ns, "bob-waives", &digest('b'), 3600),
    );
    assert!(out.status.success(), "bob's waiver: {}", stderr(&out));
    let extend = json!({"spec": {"expiresAt": "2030-01-01T00:00:00Z"}}).to_string();
    let out = t.pipeline.kubectl(&[
        "-n",
        &ns,
        "patch",
        "releasewaiver",
        "bob-waives",
        "--type=merge",
        "-p",
        &extend,
    ]);
    refused(
        &out,
        "the pipeline extending a waiver",
        &["cannot patch resource \"releasewaivers\""],
    );
    let out = t
        .carol
        .kubectl(&["-n", &ns, "delete", "releasewaiver", "bob-waives"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Declaring the new digest as the rollback image, then setting it under
    // HOLD: the gate never proved it, so it is a promotion like any other.
    let rollback = json!({"rollback": {"release": "v2.18.4", "image": image('b')}});
    patched(
        patch_gate(&t.pipeline, &ns, rollback),
        "the pipeline may declare a rollback",
    );
    let out = wh::set_image(Some(&t.pipeline), &ns, DEPLOYMENT, &image('b'), false);
    refused(
        &out,
        "set image to the declared rollback image under HOLD",
        &["[rule images-covered]", "decided HOLD", "proved: none yet"],
    );
    assert_eq!(
        wh::current_image(&client, &ns, DEPLOYMENT).await,
        image('1')
    );

    // Switching the enforced gate to shadow.
    let out = patch_gate(&t.pipeline, &ns, json!({"mode": "shadow"}));
    refused(
        &out,
        "the pipeline switching to shadow",
        &[
            "ValidatingAdmissionPolicy 'releasepassport-gates'",
            "[rule configure-verb]",
        ],
    );
    // Nor can it switch the platform's enforcement off.
    let out = t.pipeline.kubectl(&[
        "label",
        "namespace",
        &ns,
        &format!("{ENFORCE_LABEL}=false"),
        "--overwrite",
    ]);
    refused(
        &out,
        "the pipeline relabelling its namespace",
        &["is forbidden", "resource \"namespaces\""],
    );

    // Pushing facts under a pulled connector's name, or observed in the future.
    let prometheus = json!({"evidence": [{"connector": "prometheus", "freshness": {"observedAt": jiff::Timestamp::now()},
                                           "facts": [{"name": "error_rate", "value": "0.1%"}]}]});
    let out = patch_gate(&t.pipeline, &ns, prometheus);
    refused(
        &out,
        "the pipeline pushing prometheus facts",
        &[
            "spec.evidence[0].connector",
            "pushed evidence cannot use the name of a connector the operator pulls",
        ],
    );
    let future = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let later = json!({"evidence": [{"connector": "ingest", "freshness": {"observedAt": future, "maxAgeSeconds": 3600},
                                      "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": true}]}]});
    let out = patch_gate(&t.pipeline, &ns, later);
    refused(
        &out,
        "the pipeline pushing facts observed in the future",
        &["must not be observed in the future"],
    );
    let refusal = history_entry(&client, &ns, HistoryType::EvidenceRefused).await;
    assert_eq!(refusal.actor.as_deref(), Some(t.pipeline.username.as_str()));

    // Removing the gate label from the gated Deployment.
    let out = t.pipeline.kubectl(&[
        "-n",
        &ns,
        "label",
        "deployment",
        DEPLOYMENT,
        &format!("{GATE_LABEL}-"),
    ]);
    refused(
        &out,
        "the pipeline removing the gate label",
        &[
            "ValidatingAdmissionPolicy 'releasepassport-gate-label'",
            "[rule gate-label-needs-configure]",
        ],
    );

    // The platform makes enforce the minimum here: deleting the Deployment
    // and creating it again without the label is refused.
    let out = t
        .carol
        .kubectl(&["label", "namespace", &ns, &format!("{ENFORCE_LABEL}=true")]);
    assert!(
        out.status.success(),
        "carol enforces the namespace: {}",
        stderr(&out)
    );
    let out = t
        .pipeline
        .kubectl(&["-n", &ns, "delete", "deployment", DEPLOYMENT]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = eventually(
        WAIT,
        "the enforced namespace refusing unlabelled workloads",
        || {
            let (pipeline, ns) = (t.pipeline.clone(), ns.clone());
            async move {
                let out = wh::create_deployment(
                    Some(&pipeline),
                    &ns,
                    DEPLOYMENT,
                    &image('b'),
                    None,
                    true,
                );
                (!out.status.success()).then_some(out)
            }
        },
    )
    .await;
    refused(
        &out,
        "recreating the Deployment without the label",
        &["[rule enforced-namespace-coverage]"],
    );
    let out = wh::create_deployment(Some(&t.pipeline), &ns, DEPLOYMENT, &image('b'), None, false);
    refused(
        &out,
        "recreating the Deployment without the label",
        &["[rule enforced-namespace-coverage]"],
    );
    // With the label, the gate decides (HOLD: refused).
    let out = wh::create_deployment(
        Some(&t.pipeline),
        &ns,
        DEPLOYMENT,
        &image('b'),
        Some(GATE),
        false,
    );
    refused(
        &out,
        "recreating the Deployment with the label under HOLD",
        &["[rule images-covered]"],
    );
}

#[tokio::test]
async fn cluster_approvals_count_for_their_digest_for_distinct_people_and_never_for_the_releaser() {
    let (client, t) = team("trust-approvals").await;
    let ns = t.ns.clone();
    policy(&client, &ns, 1).await;
    create_gate(&t, "v2.18.3", &image('0'), json!({}));
    // dave applies the release (as CI would, with the gate command):
    // everything passes but the change approval.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("evidence.json");
    std::fs::write(&file, evidence("0.4%", false).to_string()).expect("evidence file");
    let out = releasepassport(
        &t.dave,
        &[
            "gate",
            "-n",
            &ns,
            "--service",
            "payment-api",
            "--release",
            "v2.18.4",
            "--environment",
            "production",
            "--image",
            &image('a'),
            "--evidence",
            file.to_str().expect("path"),
            "--out",
            dir.path().join("passport.json").to_str().expect("path"),
            "--timeout",
            "200s",
            "--output",
            "json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("gate summary ({e}): {}", stderr(&out)));
    assert_eq!(summary["decision"], "REQUIRE_APPROVAL", "{summary}");
    assert_eq!(out.status.code(), Some(4), "enforce mode: exit 4");
    let gate = decided(&client, &ns, Decision::RequireApproval).await;
    let applied_by = gate.spec.applied_by.clone().expect("appliedBy");
    assert_eq!(
        applied_by.release.as_deref(),
        Some("dave"),
        "stamped by the apiserver"
    );

    // dave cannot approve his own release.
    let out = releasepassport(
        &t.dave,
        &[
            "approve",
            GATE,
            "-n",
            &ns,
            "--reference",
            "CHG-1",
            "--wait",
            "--timeout",
            "200s",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("approve JSON");
    assert_eq!(report["author"], "dave");
    assert_eq!(report["state"], "NotCounted");
    assert_eq!(report["reason"], "SelfApproval");
    let refused_entry = history_entry(&client, &ns, HistoryType::ApprovalRefused).await;
    assert_eq!(refused_entry.actor.as_deref(), Some("dave"));

    // alice's approval of digest A counts.
    let out = releasepassport(
        &t.alice,
        &[
            "approve",
            GATE,
            "-n",
            &ns,
            "--reference",
            "CHG-1042",
            "--wait",
            "--timeout",
            "200s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Counted"));
    let allowed = decided(&client, &ns, Decision::Allow).await;
    let pp = passport_of(&client, &allowed).await;
    let verdicts: Vec<(String, bool, Option<String>)> = pp
        .spec
        .approvals
        .iter()
        .map(|a| (a.actor.clone(), a.counted, a.reason.clone()))
        .collect();
    assert!(
        verdicts.contains(&("alice".into(), true, None)),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&("dave".into(), false, Some("SelfApproval".into()))),
        "{verdicts:?}"
    );
    assert_eq!(pp.spec.released_by.as_deref(), Some("dave"));
    let added = history_entry(&client, &ns, HistoryType::ApprovalAdded).await;
    assert_eq!(added.actor.as_deref(), Some("alice"));
    // `kubectl get releaseapprovals` tells the story.
    let listed = String::from_utf8_lossy(
        &t.bob
            .kubectl(&["-n", &ns, "get", "releaseapprovals"])
            .stdout,
    )
    .into_owned();
    assert!(
        listed
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq([
                "NAME", "GATE", "RELEASE", "APPROVER", "STATE", "REASON", "AGE"
            ]),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains("alice") && l.contains("Counted")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains("dave") && l.contains("NotCounted") && l.contains("SelfApproval")),
        "{listed}"
    );

    // The pipeline moves the gate to digest B: alice approved A, not B.
    patched(
        patch_gate(&t.pipeline, &ns, json!({"artifact": {"image": image('b')}})),
        "the pipeline applies digest B",
    );
    let waiting = decided(&client, &ns, Decision::RequireApproval).await;
    let pp = passport_of(&client, &waiting).await;
    assert_eq!(pp.spec.artifact.digest, digest('b'));
    let alice_a = pp
        .spec
        .approvals
        .iter()
        .find(|a| a.actor == "alice")
        .expect("alice's approval is listed");
    assert_eq!(
        (alice_a.counted, alice_a.reason.as_deref()),
        (false, Some("OtherDigest"))
    );

    // Two approvers are needed now: two approvals by alice are one person.
    policy(&client, &ns, 2).await;
    for name in ["alice-b-1", "alice-b-2"] {
        let out = t.alice.kubectl_stdin(
            &["create", "-f", "-"],
            &approval(&ns, name, &digest('b'), None),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A ServiceAccount holding the approver role does not count either.
    let robot = ids::service_account(&ns, "robot");
    ids::grant(&ns, "releasepassport-approver", &robot);
    let out = eventually(WAIT, "the robot's RoleBinding in force", || {
        let (robot, ns) = (robot.clone(), ns.clone());
        async move {
            let out = robot.kubectl_stdin(
                &["create", "-f", "-"],
                &approval(&ns, "robot-b", &digest('b'), None),
            );
            out.status.success().then_some(out)
        }
    })
    .await;
    assert!(out.status.success());
    let api: Api<ReleaseApproval> = Api::namespaced(client.clone(), &ns);
    let judged = |name: &'static str| {
        let api = api.clone();
        async move {
            eventually(WAIT, &format!("{name} judged"), || {
                let api = api.clone();
                async move {
                    api.get(name)
                        .await
                        .ok()?
                        .status
                        .filter(|s| s.state.is_some())
                }
            })
            .await
        }
    };
    assert_eq!(
        judged("alice-b-2").await.reason.as_deref(),
        Some("DuplicateApprover")
    );
    assert_eq!(
        judged("robot-b").await.reason.as_deref(),
        Some("ServiceAccount")
    );
    assert_eq!(judged("alice-b-1").await.state, Some(GrantState::Counted));
    let gate = Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .get(GATE)
        .await
        .expect("gate");
    assert_eq!(
        gate.status.and_then(|s| s.decision),
        Some(Decision::RequireApproval)
    );
    // bob is the second person.
    let out = t.bob.kubectl_stdin(
        &["create", "-f", "-"],
        &approval(&ns, "bob-b", &digest('b'), None),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let allowed = decided(&client, &ns, Decision::Allow).await;
    let pp = passport_of(&client, &allowed).await;
    let counted: Vec<&str> = pp
        .spec
        .approvals
        .iter()
        .filter(|a| a.counted)
        .map(|a| a.actor.as_str())
        .collect();
    assert_eq!(counted.len(), 2, "{:?}", pp.spec.approvals);
    assert!(counted.contains(&"alice") && counted.contains(&"bob"));
}

/// A gate that proved release v2.17.9 (digest a): it held ALLOW and the
/// Deployment ran it (read through the namespace's reader ServiceAccount).
async fn proven_release(client: &Client, t: &Team) {
    let ns = &t.ns;
    support::kubectl_ok(&["apply", "-n", ns, "-f", "config/rbac/namespace-reader.yaml"]);
    Api::<ConnectorScope>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &support::load_yaml("examples/connectorscope-kubernetes.yaml"),
        )
        .await
        .expect("kubernetes scope");
    create_gate(
        t,
        "v2.17.9",
        &image('a'),
        json!({"evidence": evidence("0.4%", true), "connectorScopes": [{"name": "payment-api-runtime"}],
               "watch": {"windowSeconds": 20}}),
    );
    decided(client, ns, Decision::Allow).await;
    let out = wh::create_deployment(
        Some(&t.pipeline),
        ns,
        DEPLOYMENT,
        &image('a'),
        Some(GATE),
        false,
    );
    assert!(
        out.status.success(),
        "the allowed release is deployed: {}",
        stderr(&out)
    );
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, "release v2.17.9 proven", || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            g.status?
                .proven_releases
                .iter()
                .any(|p| p.digest == digest('a'))
                .then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn cluster_a_rollback_is_admitted_under_hold_only_to_a_release_the_gate_proved() {
    let (client, t) = team("trust-rollback").await;
    let ns = t.ns.clone();
    policy(&client, &ns, 1).await;
    proven_release(&client, &t).await;

    // The pipeline applies v2.18.4 (digest b) and deploys it; then Argo CD
    // reports it out of sync and the gate holds it.
    patched(
        patch_gate(
            &t.pipeline,
            &ns,
            json!({"release": "v2.18.4", "artifact": {"image": image('b')},
                   "evidence": evidence("0.4%", true)}),
        ),
        "the pipeline applies v2.18.4",
    );
    decided(&client, &ns, Decision::Allow).await;
    let out = wh::set_image_when(Some(&t.pipeline), &ns, DEPLOYMENT, &image('b'), true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut out_of_sync = evidence("0.4%", true);
    out_of_sync[0]["facts"][0]["value"] = json!("OutOfSync");
    patched(
        patch_gate(&t.pipeline, &ns, json!({"evidence": out_of_sync})),
        "fresh evidence",
    );
    decided(&client, &ns, Decision::Hold).await;
    // A digest that never held ALLOW is no rollback.
    let out = wh::set_image(Some(&t.pipeline), &ns, DEPLOYMENT, &image('c'), false);
    refused(
        &out,
        "a change to a digest that never held ALLOW",
        &["[rule images-covered]", &digest('a')],
    );
    // Back to the proven release: admitted under HOLD, with a warning.
    let out = wh::set_image(Some(&t.pipeline), &ns, DEPLOYMENT, &image('a'), false);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.contains("Warning: Release Passport: rollback")
            && warning.contains("which ReleaseGate")
            && warning.contains("proved"),
        "{warning}"
    );
    assert_eq!(
        wh::current_image(&client, &ns, DEPLOYMENT).await,
        image('a')
    );
    // An Event naming who rolled back, and a history entry.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = eventually(WAIT, "the RollbackAdmitted Event", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("RollbackAdmitted"))
        }
    })
    .await;
    assert_eq!(
        event
            .metadata
            .annotations
            .unwrap_or_default()
            .get("releasepassport.io/actor"),
        Some(&t.pipeline.username)
    );
    let entry = history_entry(&client, &ns, HistoryType::RollbackAdmitted).await;
    assert_eq!(entry.actor.as_deref(), Some(t.pipeline.username.as_str()));
    assert!(entry.message.contains("v2.17.9"), "{}", entry.message);
}

#[tokio::test]
async fn cluster_rollback_recommended_persists_past_the_watch_window_until_a_proven_release_runs() {
    let (client, t) = team("trust-restore").await;
    let ns = t.ns.clone();
    policy(&client, &ns, 1).await;
    proven_release(&client, &t).await;

    // v2.18.4 passes its pre-deploy checks and is promoted ...
    patched(
        patch_gate(
            &t.pipeline,
            &ns,
            json!({"release": "v2.18.4", "artifact": {"image": image('b')},
                                            "evidence": evidence("0.4%", true)}),
        ),
        "the pipeline applies v2.18.4",
    );
    decided(&client, &ns, Decision::Allow).await;
    let out = wh::set_image_when(Some(&t.pipeline), &ns, DEPLOYMENT, &image('b'), true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // ... and its error rate climbs after the promotion.
    patched(
        patch_gate(&t.pipeline, &ns, json!({"evidence": evidence("3%", true)})),
        "post-deploy evidence",
    );
    let recommended = decided(&client, &ns, Decision::RollbackRecommended).await;
    let until = recommended
        .status
        .as_ref()
        .and_then(|s| s.watch_until)
        .expect("watchUntil");

    // The signal recovers and the watch window closes: the recommendation stays.
    patched(
        patch_gate(
            &t.pipeline,
            &ns,
            json!({"evidence": evidence("0.4%", true)}),
        ),
        "recovered evidence",
    );
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let later = eventually(WAIT, "an evaluation after the watch window", || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            let s = g.status.as_ref()?;
            (s.evaluated_at? > until + jiff::SignedDuration::from_secs(1)
                && s.observed_generation == g.metadata.generation)
                .then_some(g)
        }
    })
    .await;
    let status = later.status.expect("status");
    assert_eq!(status.decision, Some(Decision::RollbackRecommended));
    let standing = status
        .rollback_recommended
        .expect("the recommendation on record");
    assert_eq!(standing.digest, digest('b'));
    assert!(
        !status
            .proven_releases
            .iter()
            .any(|p| p.digest == digest('b')),
        "never a rollback target"
    );

    // The proven release runs again: the recommendation is over.
    let out = wh::set_image(Some(&t.pipeline), &ns, DEPLOYMENT, &image('a'), false);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = history_entry(&client, &ns, HistoryType::Restored).await;
    assert!(restored.message.contains("v2.17.9"), "{}", restored.message);
    let after = eventually(WAIT, "the recommendation cleared", || {
        let gates = gates.clone();
        async move {
            let s = gates.get(GATE).await.ok()?.status?;
            s.rollback_recommended.is_none().then_some(s)
        }
    })
    .await;
    assert_ne!(after.decision, Some(Decision::RollbackRecommended));
}

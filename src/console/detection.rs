//! Detected candidates for the Integrations page: what each team namespace
//! already runs that a connector could read. Detection runs as the
//! namespace's own reader ServiceAccount (the one its ConnectorScopes name,
//! impersonated as the connectors do), so it never sees more than the team
//! granted; a namespace without such a scope is not looked at.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

use crate::connectors::Connectors;
use crate::connectors::detect::{self, Namespaces};

use super::state::ConsoleState;

/// How often detection runs again.
pub const INTERVAL: Duration = Duration::from_secs(300);

/// Runs detection now and every [`INTERVAL`], for ever (spawn it).
pub async fn run(state: Arc<ConsoleState>, connectors: Connectors) {
    state.ready().await;
    loop {
        refresh(&state, &connectors).await;
        tokio::time::sleep(INTERVAL).await;
    }
}

/// One round: each namespace, as its reader ServiceAccount.
pub async fn refresh(state: &ConsoleState, connectors: &Connectors) {
    let readers: BTreeSet<(String, String)> = state
        .scopes
        .state()
        .iter()
        .filter_map(|s| Some((s.namespace()?, s.spec.service_account_name.clone()?)))
        .collect();
    let mut done = BTreeSet::new();
    for (ns, sa) in readers {
        if !done.insert(ns.clone()) {
            continue;
        }
        let client = match connectors.as_service_account(&ns, &sa) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(namespace = %ns, error = %e, "no reader client for detection");
                continue;
            }
        };
        match detect::detect(&client, &Namespaces::Only(vec![ns.clone()]), &sa).await {
            Ok(mut found) => {
                // The reader may not list ConnectorScopes; the console knows them.
                let scopes: Vec<_> = state.scopes.state().iter().map(|s| (**s).clone()).collect();
                detect::mark_configured_by(&mut found.candidates, &scopes);
                state.set_detected(&ns, found.candidates)
            }
            Err(e) => tracing::debug!(namespace = %ns, error = %e, "detection failed"),
        }
    }
}

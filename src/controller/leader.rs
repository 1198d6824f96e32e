//! Lease-based leader election: one replica writes, the others stand by.
//!
//! The holder renews the Lease every `renew`; a standby takes it over once
//! `renewTime + leaseDuration` has passed. Updates use the Lease's
//! resourceVersion, so two candidates can never both win. A holder that
//! cannot renew in time stops writing (the process exits and restarts as a
//! candidate) rather than risk two writers.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    pub renew: Duration,
}

/// Outcome of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease now.
    Leading,
    /// Someone else holds a valid lease.
    Standby { holder: String },
}

fn lease_valid(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref() else {
        return false;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renew.0 + jiff::SignedDuration::from_secs(duration) > now
}

/// Tries once to acquire or renew the lease.
pub async fn try_acquire(client: &Client, cfg: &LeaseConfig) -> Result<Attempt, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let now = Timestamp::now();
    let ours = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.duration.as_secs() as i32),
        acquire_time: acquired.or(Some(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    match api.get_opt(&cfg.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(ours(0, None)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby {
                    holder: "unknown (lost the race to create the lease)".into(),
                }),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let holder = spec.holder_identity.clone().unwrap_or_default();
            let transitions = spec.lease_transitions.unwrap_or(0);
            let new_spec = if holder == cfg.identity {
                ours(transitions, spec.acquire_time.clone())
            } else if holder.is_empty() || !lease_valid(&spec, now) {
                ours(transitions + 1, None)
            } else {
                return Ok(Attempt::Standby { holder });
            };
            lease.spec = Some(new_spec);
            // The resourceVersion in `lease` makes this a compare-and-swap.
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Standby { holder }),
                Err(e) => Err(e),
            }
        }
    }
}

/// How often a standby looks at the Lease: often enough that when the holder
/// releases it (on SIGTERM) a standby takes over before a replacement Pod
/// has even started, at one GET per second per standby.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Waits until this replica leads.
pub async fn acquire(client: &Client, cfg: &LeaseConfig) {
    let mut last_holder = String::new();
    loop {
        match try_acquire(client, cfg).await {
            Ok(Attempt::Leading) => {
                tracing::info!(lease = %cfg.name, identity = %cfg.identity, "acquired the leader lease");
                return;
            }
            Ok(Attempt::Standby { holder }) => {
                if holder != last_holder {
                    tracing::info!(lease = %cfg.name, %holder, "standing by: another replica leads");
                    last_holder = holder;
                }
            }
            Err(e) => {
                tracing::warn!(lease = %cfg.name, error = %e, "leader election failed; retrying")
            }
        }
        tokio::time::sleep(cfg.renew.min(STANDBY_POLL)).await;
    }
}

/// Renews the lease until it cannot; returns when leadership is lost.
pub async fn hold(client: &Client, cfg: &LeaseConfig) {
    let mut last_renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.renew).await;
        match try_acquire(client, cfg).await {
            Ok(Attempt::Leading) => last_renewed = std::time::Instant::now(),
            Ok(Attempt::Standby { holder }) => {
                tracing::error!(lease = %cfg.name, %holder, "lost the leader lease");
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %cfg.name, error = %e, "renewing the leader lease failed");
                // Stop before the lease can expire and a standby takes over.
                if last_renewed.elapsed() + cfg.renew >= cfg.duration {
                    tracing::error!(lease = %cfg.name, "could not renew the leader lease in time");
                    return;
                }
            }
        }
    }
}

/// Gives the lease up on shutdown so a standby takes over at once.
pub async fn release(client: &Client, cfg: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&cfg.name).await
        && lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(cfg.identity.as_str())
    {
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            if let Err(e) = api.replace(&cfg.name, &PostParams::default(), &lease).await {
                tracing::warn!(error = %e, "releasing the leader lease failed");
            } else {
                tracing::info!(lease = %cfg.name, "released the leader lease");
            }
        }
    }
}

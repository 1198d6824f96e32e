//! The webhook's TLS: served with rustls from `tls.crt`/`tls.key` in a
//! directory, and a new certificate written there is picked up without a
//! restart; a broken pair keeps the previous one.

use std::sync::Arc;
use std::time::Duration;

use releasepassport::webhook::{AppState, WebhookCache, WebhookMetrics, router, server, tls};

fn client(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

async fn healthz(ca_pem: &str, port: u16) -> bool {
    client(ca_pem)
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn write(dir: &std::path::Path, cert: &str, key: &str) {
    // Key first, certificate last: the pair only matches once both are new.
    std::fs::write(dir.join(tls::TLS_KEY), key).expect("key");
    std::fs::write(dir.join(tls::TLS_CRT), cert).expect("cert");
}

#[tokio::test]
async fn a_new_certificate_in_the_directory_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = tls::generate(&["127.0.0.1".into()]).expect("first certificate");
    write(dir.path(), &first.cert_pem, &first.key_pem);
    let (cert, key) = tls::load_dir(dir.path()).await.expect("load");
    let config = Arc::new(tls::TlsConfig::from_pem(&cert, &key).expect("tls"));
    let mut fingerprint = cert.clone();
    fingerprint.extend_from_slice(&key);
    let reload = tokio::spawn(tls::reload_dir(
        dir.path().to_path_buf(),
        config.clone(),
        Duration::from_millis(50),
        fingerprint,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let state = AppState {
        cache: Arc::new(WebhookCache::from_objects(
            vec![],
            vec![],
            Default::default(),
        )),
        metrics: WebhookMetrics::unregistered(),
        events: None,
    };
    let serving = tokio::spawn(server::serve_tls(listener, config, router(state)));

    assert!(
        healthz(&first.ca_pem, port).await,
        "served with the first certificate"
    );

    // A half-written update (new key, old certificate) is not used.
    let second = tls::generate(&["127.0.0.1".into()]).expect("second certificate");
    std::fs::write(dir.path().join(tls::TLS_KEY), &second.key_pem).expect("key");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        healthz(&first.ca_pem, port).await,
        "a mismatched pair keeps the previous certificate"
    );

    write(dir.path(), &second.cert_pem, &second.key_pem);
    let mut switched = false;
    for _ in 0..100 {
        if healthz(&second.ca_pem, port).await {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched, "the new certificate is served");
    assert!(
        !healthz(&first.ca_pem, port).await,
        "the old CA no longer verifies the server"
    );
    reload.abort();
    serving.abort();
}

#[test]
fn the_self_signed_bootstrap_makes_a_ca_and_a_serving_certificate_it_signed() {
    let generated =
        tls::generate(&["127.0.0.1".into(), "webhook.ns.svc".into()]).expect("certificates");
    assert!(generated.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(generated.ca_pem, generated.cert_pem);
    tls::TlsConfig::from_pem(generated.cert_pem.as_bytes(), generated.key_pem.as_bytes())
        .expect("a usable serving identity");
    assert!(
        tls::TlsConfig::from_pem(generated.ca_pem.as_bytes(), generated.key_pem.as_bytes())
            .is_err(),
        "the serving key does not match the CA certificate"
    );
}

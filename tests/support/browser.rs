//! Headless Chromium driven over WebDriver by chromedriver (Debian
//! `chromium` and `chromium-driver`, installed by `make deps`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// The chromedriver process; killed on drop.
pub struct Driver {
    process: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A binary of the browser packages, from PATH.
pub fn find_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH: run `make deps` (bash hack/install-deps.sh chromium)")
        })
}

/// Starts chromedriver on a free port and waits until it answers.
pub async fn driver() -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let process = Command::new(find_binary("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { process };
    let status = format!("http://127.0.0.1:{port}/status");
    super::controller::eventually(Duration::from_secs(90), "chromedriver to listen", || {
        let status = status.clone();
        async move {
            reqwest::get(&status)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    (driver, port)
}

/// A WebDriver session on the chromedriver at `port` with these capabilities.
pub async fn session(port: u16, caps: serde_json::Value) -> Client {
    let caps = caps.as_object().cloned().expect("capabilities");
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Starts chromedriver and a headless Chromium session of `width`×`height`,
/// its profile under `dir`.
pub async fn start(dir: &Path, width: u32, height: u32) -> (Driver, Client) {
    let (driver, port) = driver().await;
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": find_binary("chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", dir.join("profile").display()),
            ],
        }
    });
    (driver, session(port, caps).await)
}

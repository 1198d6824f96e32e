//! Headless Chromium driven over WebDriver (chromedriver), and the small
//! HTTP helpers the console's browser tests share.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use fantoccini::{Client as Browser, Locator};
use serde_json::json;

use super::support::controller as ctl;

pub const LIMIT: Duration = Duration::from_secs(90);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub use super::support::browser::Driver;

/// Starts chromedriver and a headless Chromium session that downloads into `downloads`.
pub async fn browser(downloads: &Path) -> (Driver, Browser) {
    browser_with(downloads, &[]).await
}

/// [`browser`] with more Chromium switches (e.g. `--ignore-certificate-errors`
/// for a provider whose certificate the local cluster's CA signed).
pub async fn browser_with(downloads: &Path, switches: &[&str]) -> (Driver, Browser) {
    let chromium = super::support::browser::find_binary("chromium");
    let (driver, port) = super::support::browser::driver().await;
    let profile = downloads.join("profile");
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ]
    .iter()
    .chain(switches)
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": args,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
                "safebrowsing.enabled": false,
            },
        }
    });
    (driver, super::support::browser::session(port, caps).await)
}

pub async fn text(b: &Browser, css: &str) -> String {
    b.wait()
        .at_most(LIMIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("element {css}: {e}"))
        .prop("textContent")
        .await
        .expect("element text")
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in b.find_all(Locator::Css(css)).await.expect("find_all") {
        let t = e
            .prop("textContent")
            .await
            .expect("text")
            .unwrap_or_default();
        out.push(t.trim().to_string());
    }
    out
}

/// Clicks the element with id `id`.
pub async fn click(b: &Browser, id: &str) {
    b.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("element #{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
}

/// Types `keys` into the element with id `id`.
pub async fn type_into(b: &Browser, id: &str, keys: &str) {
    b.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("element #{id}: {e}"))
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
}

/// Loads `url` until the page contains `needle` (the console's caches follow
/// the apiserver's watch).
pub async fn page_with(b: &Browser, url: &str, needle: &str) -> String {
    ctl::eventually(LIMIT, &format!("{url} to show {needle:?}"), || async {
        b.goto(url).await.ok()?;
        let source = b.source().await.ok()?;
        source.contains(needle).then_some(source)
    })
    .await
}

/// Waits until the console at `base` serves its sign-in page.
pub async fn serving(http: &reqwest::Client, base: &str) {
    ctl::eventually(LIMIT, "the console to serve", || {
        let (http, url) = (http.clone(), format!("{base}/console/login"));
        async move {
            http.get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(String::from)
}

pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

//! The page shell (navigation, account menu) and small shared pieces.

use maud::{DOCTYPE, Markup, html};

use crate::api::{Decision, ResultState};

/// The menus, in the order of the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Releases,
    Gates,
    Radar,
    Metrics,
    Integrations,
    Audit,
    Settings,
}

impl Nav {
    const ALL: [Nav; 8] = [
        Nav::Overview,
        Nav::Releases,
        Nav::Gates,
        Nav::Radar,
        Nav::Metrics,
        Nav::Integrations,
        Nav::Audit,
        Nav::Settings,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Overview => "Overview",
            Nav::Releases => "Releases",
            Nav::Gates => "Gates",
            Nav::Radar => "Radar",
            Nav::Metrics => "Metrics",
            Nav::Integrations => "Integrations",
            Nav::Audit => "Audit log",
            Nav::Settings => "Settings",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Nav::Overview => "/console",
            Nav::Releases => "/console/passports",
            Nav::Gates => "/console/gates",
            Nav::Radar => "/console/radar",
            Nav::Metrics => "/console/metrics",
            Nav::Integrations => "/console/integrations",
            Nav::Audit => "/console/audit",
            Nav::Settings => "/console/settings",
        }
    }
}

/// Who the page is rendered for.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub csrf: &'a str,
}

fn links(active: Nav) -> Markup {
    html! {
        @for item in Nav::ALL {
            @if item == active {
                a href=(item.href()) aria-current="page" { (item.label()) }
            } @else {
                a href=(item.href()) { (item.label()) }
            }
        }
    }
}

/// A full page.
pub fn page(title: &str, active: Nav, viewer: &Viewer<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Release Passport" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav.mobile aria-label="Menu" {
                        details.menu-toggle {
                            summary { "Menu" }
                            div.menu { (links(active)) }
                        }
                    }
                    a.brand href="/console" { "Release Passport" }
                    details.account.menu-toggle {
                        summary aria-label="Account menu" { "Account ▾" }
                        div.menu {
                            p { "Signed in as " strong #account-user { (viewer.user) } }
                            @if !viewer.groups.is_empty() {
                                p { "Groups: " (viewer.groups.join(", ")) }
                            }
                            form method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button #logout type="submit" { "Log out" }
                            }
                        }
                    }
                }
                div.layout {
                    nav.side aria-label="Console" { (links(active)) }
                    main #main { h1 { (title) } (body) }
                }
                script src="/console/static/console.js" defer {}
            }
        }
    }
}

/// A page for people who are not signed in.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Release Passport" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header.top { span.brand { "Release Passport" } }
                main #main { (body) }
            }
        }
    }
}

/// A coloured decision label (the text is always there, colour is a hint).
pub fn decision(d: Decision) -> Markup {
    html! { span class={ "badge d-" (d.as_str()) } { (d.as_str()) } }
}

/// A decision, or "pending" when there is none yet.
pub fn maybe_decision(d: Option<Decision>) -> Markup {
    match d {
        Some(d) => decision(d),
        None => html! { span.muted { "pending" } },
    }
}

pub fn state(s: ResultState) -> Markup {
    let (class, text) = match s {
        ResultState::Pass => ("s-pass", "pass"),
        ResultState::Fail => ("s-fail", "fail"),
        ResultState::Stale => ("s-stale", "stale"),
        ResultState::Missing => ("s-missing", "missing"),
        ResultState::Waived => ("s-waived", "waived"),
    };
    html! { span class=(class) { (text) } }
}

/// A timestamp in RFC 3339 (turned into a relative age by the page script).
pub fn time(t: jiff::Timestamp) -> Markup {
    let s = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    html! { time datetime=(s) { (s) } }
}

pub fn maybe_time(t: Option<jiff::Timestamp>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// A URL path segment, percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn passport_href(namespace: &str, name: &str) -> String {
    format!("/console/passports/{}/{}", seg(namespace), seg(name))
}

pub fn gate_href(namespace: &str, name: &str) -> String {
    format!("/console/gates/{}/{}", seg(namespace), seg(name))
}

/// An empty-state line.
pub fn empty(text: &str) -> Markup {
    html! { p.muted { (text) } }
}

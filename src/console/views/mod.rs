//! Server-rendered pages (maud: escaped by construction).

pub mod actions;
pub mod audit;
pub mod gates;
pub mod integrations;
pub mod investigation;
pub mod layout;
pub mod metrics;
pub mod overview;
pub mod passports;
pub mod radar;
pub mod settings;

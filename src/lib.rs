//! Release Passport: decide from evidence whether a release may be promoted,
//! and record the decision as a signed Passport.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod connectors;
pub mod console;
pub mod controller;
pub mod engine;
pub mod insights;
pub mod oci;
pub mod passport;
pub mod webhook;

//! OCI registries: attaching a passport's attestation to the image it
//! judges (cosign's attachment layout, with an OCI 1.1 subject), with
//! registry credentials from a Docker config. Off unless asked for.

pub mod attach;
pub mod client;
pub mod reference;

pub use attach::{Attached, attach};
pub use client::{Credentials, OciError, RegistryClient, RegistryOptions};
pub use reference::ImageRef;

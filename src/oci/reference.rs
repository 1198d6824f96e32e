//! Image references pinned by digest, split the way the registry API needs
//! them: registry host, repository, digest.

/// Docker Hub's registry name in image references, and its API host.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// `registry/repository@sha256:<hex>`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry as written (`registry.example.com`, `localhost:5000`, `docker.io`).
    pub registry: String,
    /// Repository path within the registry (`team/app`, `library/nginx`).
    pub repository: String,
    /// `sha256:<64 lowercase hex>`.
    pub digest: String,
}

/// Why an image reference cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("image {image:?}: {reason}")]
pub struct RefError {
    pub image: String,
    pub reason: &'static str,
}

impl ImageRef {
    /// Parses `[registry/]repository[:tag]@sha256:<hex>`. A first path
    /// component with a `.` or `:`, or `localhost`, is a registry; otherwise
    /// the image is on Docker Hub (`library/` for one-component names).
    pub fn parse(image: &str) -> Result<Self, RefError> {
        let err = |reason| RefError {
            image: image.to_string(),
            reason,
        };
        let (name, digest) = image
            .split_once('@')
            .ok_or_else(|| err("not pinned by digest (expected …@sha256:<64 hex>)"))?;
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| err("only sha256 digests are supported"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err("the digest is not 64 lowercase hex characters"));
        }
        let name = super::super::passport::attestation::image_name(name);
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'.' | b'_' | b'-' | b'/')
                })
        };
        if !valid(&repository) {
            return Err(err(
                "the repository name is not valid (lowercase letters, digits, . _ - /)",
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            digest: digest.to_string(),
        })
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The hex of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    /// The tag cosign keeps a digest's attestations under: `sha256-<hex>.att`.
    pub fn attestation_tag(&self) -> String {
        format!("sha256-{}.att", self.hex())
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn registries_repositories_and_docker_hub() {
        let d = digest();
        let r = ImageRef::parse(&format!("registry.example.com/team/app:v1@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.example.com", "team/app")
        );
        let r = ImageRef::parse(&format!("127.0.0.1:5000/app@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.api_host()),
            ("127.0.0.1:5000", "127.0.0.1:5000")
        );
        let r = ImageRef::parse(&format!("nginx@{d}")).unwrap();
        assert_eq!(
            (r.api_host(), r.repository.as_str()),
            ("registry-1.docker.io", "library/nginx")
        );
        let r = ImageRef::parse(&format!("bitnami/redis@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "bitnami/redis")
        );
        assert_eq!(
            r.attestation_tag(),
            format!("sha256-{}.att", "ab".repeat(32))
        );
    }

    #[test]
    fn unpinned_or_odd_references_are_refused() {
        for image in [
            "registry.example.com/app:v1",
            "registry.example.com/app@sha512:abcd",
            "registry.example.com/app@sha256:ABCD",
            &format!("registry.example.com/App@{}", digest()),
        ] {
            assert!(ImageRef::parse(image).is_err(), "{image}");
        }
    }
}

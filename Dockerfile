# syntax=docker/dockerfile:1
# Release Passport operator image: one static (musl) binary on distroless,
# running as the non-root user 65532. Build (from the repository root):
#   docker build -t release-passport:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/release-passport:0.1.0 --push .

FROM rust:1.95-alpine AS build
# ring (signing, TLS) compiles C and assembly: the musl headers are enough.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
# .dockerignore lets only Cargo.toml, Cargo.lock and the Rust sources in.
COPY . .
# Alpine's Rust targets musl and links statically; the target is named
# explicitly so the result is static whatever the defaults.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
    && cargo build --release --locked --bin releasepassport --target "$target" \
    && install -D -m 0755 "target/$target/release/releasepassport" /out/releasepassport

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/releasepassport /usr/local/bin/releasepassport
USER 65532:65532
# 8080: /healthz, /readyz, /metrics; 8443: admission webhook (HTTPS).
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/releasepassport"]
CMD ["controller"]

# syntax=docker/dockerfile:1
# The repairmatch image: the release binary on a distroless base (glibc, CA
# certificates for rediss://, no shell, no package manager), running as the
# numeric non-root user 65532. No sample data: the sample catalog is generated
# by the binary itself, and only when a config asks for it.
#
#   podman build -t localhost/repairmatch:0.1.0 .      (or docker build / buildah bud)
#
# Dockerfile.scratch builds the same image from scratch around a binary built
# on the host, for machines that cannot pull these base images.

FROM docker.io/library/rust:1.95-slim-bookworm AS builder
WORKDIR /src
# Compiling needs no protoc (protox) and no system libraries beyond the C
# compiler the rust image has (mimalloc, ring). The binary is stripped of
# symbols and line tables (the static build here: 18 MB stripped, 90 MB not).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p repairmatch \
 && install -s -D -m 0755 target/release/repairmatch /out/repairmatch

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/repairmatch /usr/local/bin/repairmatch
USER 65532:65532
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/repairmatch"]
CMD ["serve", "--config", "/etc/repairmatch/config/repairmatch.toml"]

# The blog service's container image: a static (musl) binary on an empty base, run as non-root.
# Not built in CI (no Docker engine on the build machines); `make lambda-zip` builds the same binary.
#   docker buildx build --platform linux/arm64 --provenance=false -t blog-service:dev .
# One platform, no provenance attestation: more platforms, or an attestation, make buildx push an
# image index, which Lambda refuses (the operator says ImageNotRunnable). Untested here (no Docker).
#   docker run -p 8080:8080 blog-service:dev
FROM rust:1.95-bookworm AS build
# The build stage runs on the target platform (`docker buildx build --platform linux/arm64,linux/amd64`
# emulates it), so the musl target is the machine's own: one Dockerfile for both architectures.
RUN rustup target add "$(uname -m)-unknown-linux-musl" \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p blog-service --target "$(uname -m)-unknown-linux-musl" \
 && mkdir -p /out/data \
 && cp "target/$(uname -m)-unknown-linux-musl/release/"blog-service /out/blog-service

FROM scratch
# CA roots for HTTPS to DynamoDB; the binary needs nothing else.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/blog-service /blog-service
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PORT=8080 DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/blog-service"]

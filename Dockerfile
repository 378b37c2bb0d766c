# The blog service's container image: a static (musl) binary on an empty base, run as non-root.
# Not built in CI (no Docker engine on the build machines); `make lambda-zip` builds the same binary.
#   docker build -t blog-service:dev .
#   docker run -p 8080:8080 blog-service:dev
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p blog-service --target x86_64-unknown-linux-musl \
 && mkdir -p /out/data \
 && cp target/x86_64-unknown-linux-musl/release/blog-service /out/blog-service

FROM scratch
# CA roots for HTTPS to DynamoDB; the binary needs nothing else.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/blog-service /blog-service
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PORT=8080 DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/blog-service"]

# agent-mesh: a static musl binary in an empty image.
#
#   docker build -t agent-mesh .
#   docker run --rm -p 8080:8080 -e MESH_USER=me -e MESH_PASS=... agent-mesh
#
# The final image holds one file. No CA bundle is needed: provider HTTPS uses rustls
# with the web PKI roots compiled into the binary (extra roots: MESH_CA_FILE). No shell
# either, so no HEALTHCHECK instruction: Fly and Render check GET /health over HTTP.

ARG RUST_VERSION=1.95

# ---- build: the same recipe as `make static` ----------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$TARGET"
WORKDIR /src

# Dependencies first, in a layer of their own: a change to src/ or assets/ then
# rebuilds only the crate itself.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --target "$TARGET" --bin agent-mesh \
 && rm -rf src

COPY src ./src
COPY assets ./assets
# touch: COPY keeps the files' old mtimes, which cargo could take for "already built".
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --target "$TARGET" --bin agent-mesh \
 && cp "target/$TARGET/release/agent-mesh" /agent-mesh \
 && (ldd /agent-mesh 2>&1 || true) | grep -qE 'not a dynamic executable|statically linked' \
 && /agent-mesh --version

# ---- run: an empty image with the binary ---------------------------------------------
FROM scratch
COPY --from=build /agent-mesh /agent-mesh
# A numeric non-root user: scratch has no /etc/passwd to look a name up in.
USER 10001:10001
# With PORT set the server listens on 0.0.0.0:$PORT, and then refuses to start without
# MESH_USER and MESH_PASS (set them as secrets on the platform).
ENV PORT=8080 \
    MESH_LOG=info
EXPOSE 8080
ENTRYPOINT ["/agent-mesh"]
CMD ["serve"]

# ponte: one image, every service (`ponte serve <service>`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ponte

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ponte /usr/local/bin/ponte
USER 65532:65532
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/ponte"]

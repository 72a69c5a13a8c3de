# Multi-stage build: a static, non-root image holding only the two binaries.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/cpisd ./cmd/cpisctl \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cpisd /out/cpisctl /usr/local/bin/
# The embedded store and the dev signing key live here; mount a volume in
# production, or set CPIS_DATABASE_URL for PostgreSQL.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV CPIS_ADDR=0.0.0.0:8080 CPIS_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cpisd"]

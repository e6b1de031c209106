# GopherMQ broker image, built from Debian 12 packages.
#
#   docker build -t gophermq .
#   docker run -p 8082:8082 -p 9001:9001 gophermq broker
#
# io_uring: Docker 25 and later (and recent containerd) block the
# io_uring system calls in the default seccomp profile; the broker then exits
# at once with one "cannot start ... io_uring" line. Run it with
# `--security-opt seccomp=unconfined` or a profile that allows io_uring_setup,
# io_uring_enter and io_uring_register (see README, "Deployment").
#
# The image's binary targets x86-64-v3 (Haswell and later, AVX2), since the
# image may run on a machine other than the one that built it. simdjson picks
# its SIMD kernel at compile time; override with --build-arg, e.g.
#   docker build --build-arg CPU=x86-64-v4 -t gophermq .   # AVX-512 hosts
#   docker build --build-arg CPU=none -t gophermq .        # compiler default (any x86-64, or arm64)

# ---- build stage ----
FROM debian:12-slim AS build

ARG CPU=x86-64-v3

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ \
      meson \
      ninja-build \
      pkg-config \
      liburing-dev \
      libsimdjson-dev \
      libyaml-cpp-dev \
      node-llhttp \
      libmimalloc-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

RUN meson setup /build \
      --buildtype=release \
      --prefix=/usr/local \
      -Dtests=false \
      -Dbenchmarks=false \
      -Dcpu="${CPU}" \
 && ninja -C /build gophermq \
 && meson install -C /build --destdir /out --strip \
 && /out/usr/local/bin/gophermq --version

# ---- runtime stage ----
FROM debian:12-slim

# Only the shared libraries the binary links (libstdc++ and libgcc are in the
# base image already).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      liburing2 \
      libsimdjson14 \
      libyaml-cpp0.7 \
      libmimalloc2.0 \
 && rm -rf /var/lib/apt/lists/*

# An unprivileged user with a fixed id, so that runAsNonRoot-style checks can
# verify it and host bind mounts can be chowned to match.
RUN groupadd --system --gid 10001 gophermq \
 && useradd --system --uid 10001 --gid gophermq --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin gophermq

COPY --from=build /out/usr/local/bin/gophermq /usr/local/bin/gophermq
# Every key at its default, documented. Replace it with a bind mount
# (-v ./config.yaml:/etc/gophermq/config.yaml:ro) or override single keys with
# GOPHERMQ_* variables (-e GOPHERMQ_BROKER_MAX__PENDING=5000000) or flags.
COPY deploy/config.yaml /etc/gophermq/config.yaml

# The broker reads config.yaml from its working directory.
WORKDIR /etc/gophermq
USER 10001:10001

# 8082: the HTTP API (broker.port). 9001: monitoring, /metrics (monitoring.port).
EXPOSE 8082 9001

# SIGTERM makes the broker drain for at most broker.shutdown-timeout (10s), as
# long as `docker stop`'s default grace period: give it more with
# `docker run --stop-timeout 30` or `docker stop -t 30`.
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/gophermq"]
CMD ["broker"]

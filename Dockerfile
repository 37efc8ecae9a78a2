# meshsync-recorder as a container: the sidecar that journals MeshSync's NATS traffic.
#
#   docker build -t meshsync-recorder:0.1.0 .
#   docker run -d --name recorder --stop-timeout 20 \
#     -e RECORDER_NATS_URL=nats://meshery-nats:4222 \
#     -v recorder-journal:/var/lib/meshsync-recorder -p 9464:9464 meshsync-recorder:0.1.0
#
# Configured entirely by RECORDER_* variables (every key of config/recorder.yaml has one), or by a
# file mounted into the container and named by RECORDER_CONFIG; the variables win over the file.

# Stage 1: build the wheel; the build tools never reach the final image.
FROM python:3.11-slim AS build
# A C compiler for the YAML emitter's extension (recorder/compact/_yamlemit.c), in this stage
# only: the final image receives it compiled, inside the wheel. Unpinned: the compiler's version
# never reaches the image, and the base image's Debian release fixes it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md setup.py ./
COPY recorder ./recorder
# The extension is optional to pip (an install without a compiler falls back to Python): here a
# wheel without it fails the build, so the image cannot silently write YAML six times slower.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -c "import glob, sys, zipfile; sys.exit(not any('_yamlemit.' in name \
       for wheel in glob.glob('/wheels/*.whl') for name in zipfile.ZipFile(wheel).namelist()))"

# Stage 2: the runtime package and its dependencies in a venv, nothing else (no test extra, no
# nats-server: the broker is MeshSync's).
FROM python:3.11-slim
ENV VIRTUAL_ENV=/opt/meshsync-recorder
ENV PATH="$VIRTUAL_ENV/bin:$PATH"
# The wheel is bind-mounted from stage 1 (BuildKit, docker build's default since Docker 23), so it
# never becomes a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-cache-dir /wheels/*.whl

# A fixed uid/gid, so volume ownership, Kubernetes' runAsUser and fsGroup can name it.
RUN groupadd --system --gid 10001 recorder \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin recorder \
    && install -d -m 0700 -o 10001 -g 10001 /var/lib/meshsync-recorder
# Declared after the chown, so a fresh named volume starts owned by the recorder, mode 0700.
VOLUME ["/var/lib/meshsync-recorder"]

# 0.0.0.0: probes and scrapers reach the listener from outside the container.
ENV RECORDER_JOURNAL_DIR=/var/lib/meshsync-recorder \
    RECORDER_HTTP_LISTEN=0.0.0.0:9464 \
    RECORDER_LOG_FORMAT=json
EXPOSE 9464

USER 10001:10001
WORKDIR /var/lib/meshsync-recorder

# /healthz answers as long as the process serves requests; /readyz (broker, journal, disk) is for
# Kubernetes' readinessProbe, which takes a pod out of service instead of restarting it.
# `recorder health` reads the effective configuration as `recorder run` does (RECORDER_CONFIG's
# file, then RECORDER_* variables), so it asks the port the daemon really listens on; with
# http.listen off it checks that a live recorder holds the journal's LOCK. Exit 0 or 1, and its
# own timeout leaves the interpreter's start-up time inside docker's.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["recorder", "health", "--timeout", "3"]

# SIGTERM stops intake, drains the subscription (at most 5 s), writes what is queued, fsyncs and
# seals the segment, then exits 0. Give it 20 s before SIGKILL, twice docker's default of 10 s:
# `docker stop -t 20`, `docker run --stop-timeout 20`, Kubernetes terminationGracePeriodSeconds >= 20.
STOPSIGNAL SIGTERM
ENTRYPOINT ["recorder"]
CMD ["run"]

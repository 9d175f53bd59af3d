# distroguard's own image, built the way its python-base-images policy asks (CI checks it with
# `distroguard check --dockerfile Dockerfile --policy policies/python-base-images.yaml`):
#   - the official Python image on the current Debian stable: glibc, supported, long-term, slim;
#   - two stages: dependencies and distroguard's wheel are installed into a virtual environment in the
#     build stage, and only that environment is copied into a clean runtime stage (no compilers, no
#     build tools, no pip cache in the final image);
#   - every dependency pinned with its hashes (requirements.lock; scripts/lock-requirements writes it),
#     binary wheels only;
#   - a non-root numeric user (the chart's runAsUser 65532) and nothing written to the root file
#     system at run time (the chart mounts it read-only);
#   - no HEALTHCHECK: the chart's readiness, liveness and startup probes decide.
#
# Pin the base by digest when building a release: --build-arg PYTHON_IMAGE=python:3.13-slim-trixie@sha256:...
ARG PYTHON_IMAGE=python:3.13-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The dependencies first: this layer is rebuilt only when the lock files change.
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build-tools \
 && /opt/build-tools/bin/pip install --no-deps --require-hashes --only-binary=:all: -r requirements-build.lock \
 && python -m venv --without-pip /opt/distroguard \
 && /opt/build-tools/bin/pip --python /opt/distroguard/bin/python install \
        --no-deps --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /src/dist . \
 && /opt/build-tools/bin/pip --python /opt/distroguard/bin/python install --no-deps /src/dist/distroguard-*.whl \
 && /opt/build-tools/bin/pip --python /opt/distroguard/bin/python check \
 && /opt/distroguard/bin/distroguard --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="distroguard" \
      org.opencontainers.image.description="Kubernetes admission controller that knows what your images are really built on" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/distroguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/distroguard /opt/distroguard
USER 65532:65532
ENTRYPOINT ["distroguard"]
CMD ["--help"]

# One image for every Switchboard service; the command picks one:
#   python -m switchboard_edge | switchboard_auth | switchboard_router | switchboard_operator
# (`switchboard keys …`, the key CLI, is on PATH too). Build: `make images`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: generate the gRPC stubs, install the project and its pinned runtime dependencies ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/switchboard
# The lock pins every dependency (dev tools too); it is used as constraints, so only what the project
# itself needs is installed, at the locked versions.
COPY requirements.lock pyproject.toml ./
RUN grep -E '^(grpcio-tools|protobuf|setuptools)==' requirements.lock > /tmp/build-tools.txt \
 && pip install -r /tmp/build-tools.txt
COPY protos/ protos/
# The same generation as the Makefile's gen/.stamp.
RUN mkdir -p gen \
 && python -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen \
      $(find protos -name '*.proto') \
 && find gen -type d -exec touch {}/__init__.py \; \
 && rm -f gen/__init__.py
COPY services/ services/
COPY operator/ operator/
COPY simulator/ simulator/
COPY tools/ tools/
# Then every service's entry module must import with the runtime dependencies alone (no dev packages here).
RUN /opt/switchboard/bin/pip install --upgrade $(grep -E '^(pip|setuptools)==' requirements.lock) \
 && /opt/switchboard/bin/pip install --no-build-isolation -c requirements.lock . \
 && /opt/switchboard/bin/python -c "import switchboard_edge.__main__, switchboard_auth.__main__, \
      switchboard_router.__main__, switchboard_operator.__main__" \
 && /opt/switchboard/bin/switchboard --help > /dev/null

# ---- runtime: the virtualenv alone, as a non-root user ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Relay gateway for AI model APIs: edge, auth, router and the UpstreamAccount operator"
RUN groupadd --system --gid 65532 switchboard \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/switchboard --create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /opt/switchboard /opt/switchboard
ENV PATH=/opt/switchboard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SWITCHBOARD_EDGE_HOST=0.0.0.0 \
    SWITCHBOARD_AUTH_LISTEN=0.0.0.0:50051 \
    SWITCHBOARD_ROUTER_LISTEN=0.0.0.0:50052
WORKDIR /home/switchboard
USER 65532:65532
EXPOSE 8080 9100 50051 9101 50052 9102
CMD ["python", "-m", "switchboard_edge"]

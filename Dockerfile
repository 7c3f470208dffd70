# linkguard service image. Not built on the development machines (no Docker there); kept plain.
#
#   docker build -t linkguard .
#   docker run --rm -p 8080:8080 -e LINKGUARD_WORKERS=4 \
#       -e LINKGUARD_ADMIN_TOKEN_FILE=/run/secrets/linkguard-admin \
#       -v /srv/lists:/lists:ro -e LINKGUARD_LISTS=/lists/lists.toml linkguard
#
# Without a /lists volume it serves the demo lists shipped in the package (/app/lists links them).
# The hot path is compiled to C when linkguard is built (setup.py: mypyc), which takes a C
# compiler: the full image builds the wheel, the slim one installs it.
FROM python:3.11 AS build
COPY . /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LINKGUARD_HOST=0.0.0.0 \
    LINKGUARD_PORT=8080

WORKDIR /app
COPY . /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/linkguard-*.whl \
    && rm -r /wheels \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin linkguard \
    && mkdir -p /lists \
    && chown linkguard /lists

USER linkguard
EXPOSE 8080
VOLUME ["/lists"]

# python:slim has no curl; the check hits /healthz on the configured port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LINKGUARD_PORT', '8080'), timeout=4)"

# Exec form: the master is PID 1 and gets SIGTERM directly; it drains every worker and exits 0.
STOPSIGNAL SIGTERM
CMD ["linkguard", "serve"]

# One image recipe for the three processes; the SERVICE build argument picks which:
#   docker build --build-arg SERVICE=gateway -t rooms-gateway .
#   (SERVICE: gateway, chat_service or meeting_service)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The dependencies first, in a layer of their own: a change to the source
# reuses it. They are read from pyproject.toml, the one list of them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app

ARG SERVICE=gateway
COPY shared ./shared
COPY ${SERVICE} ./${SERVICE}
RUN pip install --no-cache-dir --no-deps . && rm -rf build ./*.egg-info

# Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
ENV SERVICE=${SERVICE} HOST=0.0.0.0 PORT=8080 METRICS_PORT=9100 ENVIRONMENT=production
EXPOSE 8080 9100
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
  CMD ["python", "-m", "shared.healthcheck"]
# SIGTERM: the process stops taking work, lets what runs finish (SHUTDOWN_GRACE_S), exits.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "shared.runner"]

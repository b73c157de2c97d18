# One image for every onewindow process; docker-compose.yml picks the command per service
# (onewindow worker | materials-worker | sink | counter | gateway | provision | rebuild |
# simulate).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ONEWINDOW_DATA_DIR=/var/lib/onewindow \
    ONEWINDOW_CACHE_DIR=/var/lib/onewindow/cache \
    ONEWINDOW_METRICS_HOST=0.0.0.0 \
    ONEWINDOW_LOG_JSON=true

# A regular (non-editable) install: the Avro schemas, the data files and the Alembic
# scripts are package data, read through importlib.resources.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY onewindow ./onewindow
COPY onewindow_cli ./onewindow_cli
COPY onewindow_migrations ./onewindow_migrations
COPY producers ./producers
COPY stream_apps ./stream_apps
COPY sinks ./sinks
COPY counter ./counter
COPY gateway ./gateway
COPY schemas ./schemas
RUN pip install '.[postgres]' \
    && useradd --system --uid 10001 --home-dir /var/lib/onewindow onewindow \
    && mkdir -p /var/lib/onewindow \
    && chown onewindow /var/lib/onewindow

USER onewindow
VOLUME ["/var/lib/onewindow"]
# worker /metrics, materials-worker /metrics, sink /metrics, counter HTTP API, gateway
EXPOSE 6066 6067 9102 8000 8001
ENTRYPOINT ["onewindow"]
CMD ["--help"]

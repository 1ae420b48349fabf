# arke-dr-pipeline: the Dagster code, webserver and daemon, plus the pinned
# `ipfs` binary (restore drills and offline tools work inside the image).
FROM ipfs/kubo:v0.39.0 AS kubo

FROM python:3.11.14-slim-bookworm
RUN useradd --create-home --uid 10001 arke
COPY --from=kubo /usr/local/bin/ipfs /usr/local/bin/ipfs
WORKDIR /app
COPY pyproject.toml README.md ./
COPY arke_dr_pipeline ./arke_dr_pipeline
RUN pip install --no-cache-dir . && ipfs version --number
COPY workspace.yaml ./
COPY deploy ./deploy
ENV DAGSTER_HOME=/opt/dagster/home \
    BACKUPS_DIR=/data/backups \
    SNAPSHOTS_DIR=/data/snapshots \
    ARKE_PROGRESS=0
RUN mkdir -p "$DAGSTER_HOME" /data/backups /data/snapshots \
    && cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml" \
    && chown -R arke "$DAGSTER_HOME" /data
USER arke
EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "arke_dr_pipeline.defs", "-a", "defs"]

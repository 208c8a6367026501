# verwijsindex: one instance of the service (README, "Deploying for a region").
#   docker build -t verwijsindex .
# compose.yaml runs two of them on one PostgreSQL database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VERWIJSINDEX_DATA_DIR=/var/lib/verwijsindex \
    VERWIJSINDEX_SMTP_HOST=0.0.0.0 \
    VERWIJSINDEX_SLACK_HOST=0.0.0.0 \
    VERWIJSINDEX_HTTP_HOST=0.0.0.0

# Not root: the service needs no privilege (its ports are above 1024; MX port 25 is the region's
# mail server's, which relays to 2525).
RUN groupadd --system verwijsindex \
    && useradd --system --gid verwijsindex --home-dir /var/lib/verwijsindex verwijsindex \
    && install -d -o verwijsindex -g verwijsindex -m 0700 /var/lib/verwijsindex

WORKDIR /opt/verwijsindex
COPY pyproject.toml constraints.txt README.md cli.py ./
COPY core ./core
COPY mail_gateway ./mail_gateway
COPY bot ./bot
COPY demo ./demo
COPY templates ./templates
COPY docs ./docs
COPY deploy ./deploy
RUN bash deploy/install.sh

USER verwijsindex
VOLUME ["/var/lib/verwijsindex"]
# SMTP intake, the Slack endpoint, health and metrics.
EXPOSE 2525 3000 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["verwijsindex", "serve"]

# The mailwindow worker image (docker-compose.yml): the package and its PostgreSQL driver.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from (tests, bench and data stay out: .dockerignore);
# synthetic/ is the sample events of `mailwindow send-test-events`.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules/ rules/
COPY streams/ streams/
COPY schemas/ schemas/
COPY synthetic/ synthetic/
# A regular (not editable) install: the topic schemas go in as package data (streams/schemas).
RUN pip install ".[postgres]" \
    && python -c "from streams.events import load_schema; load_schema('contacts')"

# Not root; the working directory holds the worker's local state and is a volume.
RUN useradd --system --create-home --home-dir /var/lib/mailwindow mailwindow
USER mailwindow
WORKDIR /var/lib/mailwindow

# GET /health/live and /health/ready (mailwindow worker --health-port; docker-compose.yml).
EXPOSE 8081
CMD ["mailwindow", "worker", "--broker", "kafka:9092", "--db", "postgresql+psycopg://mailwindow:mailwindow@postgres/mailwindow", \
     "--health-port", "8081", "--health-host", "0.0.0.0"]

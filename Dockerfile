# One image for the API and the workers; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MNISTLAB_HOME=/var/lib/mnistlab MNISTLAB_DATA_DIR=/datasets
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY trainer ./trainer
COPY common ./common
COPY cli ./cli
RUN pip install . && useradd --system --home /var/lib/mnistlab mnistlab \
    && mkdir -p /var/lib/mnistlab /artifacts && chown mnistlab /var/lib/mnistlab /artifacts
USER mnistlab
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]

# Exporthub: one image for the web app and the workers (the command decides which).
#   docker build -t exporthub .
#   docker run ... exporthub web        # a web replica
#   docker run ... exporthub worker     # a worker (SIGTERM drains it: give it the grace period)
FROM python:3.11-slim

# PDFs set CJK names in Droid Sans Fallback when it is there (DejaVu Sans ships with the package).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-droid-fallback \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md app.py server.py worker.py cli.py ./
COPY exporthub ./exporthub
COPY exporters ./exporters
COPY ui ./ui
COPY web ./web
COPY pages ./pages
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --uid 10001 --create-home exporthub && mkdir -p /data && chown exporthub /data
USER exporthub
WORKDIR /home/exporthub
ENV EXPORTHUB_DATA_DIR=/data \
    EXPORTHUB_ADDRESS=0.0.0.0 \
    PYTHONUNBUFFERED=1
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/healthz').status != 200)" || exit 1
CMD ["exporthub", "web"]

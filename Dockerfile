# payments-service: one image for the API (`payments-service serve`) and the worker.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY payments_service ./payments_service
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 payments
COPY --from=build /install /usr/local
COPY wsgi.py /app/wsgi.py
WORKDIR /app
USER payments
ENV PYTHONUNBUFFERED=1 PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]
# SIGTERM lets in-flight requests (and their Stripe calls) finish within gunicorn's graceful timeout.
STOPSIGNAL SIGTERM
CMD ["payments-service", "serve"]

# The Oncall portal: one image for web (gunicorn), Celery worker and Celery beat.
# docker-compose.yml runs it; docs/deploy.md explains the set-up. No secret is baked in: every
# setting comes from the environment when the container starts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

# The processes run as this unprivileged user; it owns only var/ (mail files, beat schedule).
RUN groupadd --system oncall \
    && useradd --system --gid oncall --create-home --home-dir /home/oncall oncall

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image with the production storage (hashed, compressed
# names). The key below exists only for this build step and is not kept in the image.
RUN DEBUG=0 SECRET_KEY=collectstatic-at-build-time-only-not-a-secret \
        python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var \
    && chown oncall:oncall /app/var

USER oncall

EXPOSE 8000

CMD ["gunicorn", "oncall.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "4", "--threads", "2", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-", "--logger-class", "oncall.gunicorn_logging.KeyMaskingLogger"]

# Neural Network Playground - internal-hosting image.
#   docker build -t nn-playground .
#   docker run -p 8501:8501 nn-playground
FROM python:3.12-slim

# Headless Streamlit, no usage statistics, no file watcher; one BLAS thread per
# process (training runs in worker processes, one job per CPU).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

WORKDIR /app

# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

# A numeric, unprivileged user (Kubernetes runAsNonRoot can verify a numeric UID).
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001

EXPOSE 8501

# Python instead of curl (the slim image has none); honours STREAMLIT_SERVER_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request as u; r=u.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('STREAMLIT_SERVER_PORT', '8501'), timeout=4); sys.exit(0 if r.read() == b'ok' else 1)"]

# Exec form: Streamlit runs as PID 1 and receives the container's SIGTERM itself.
ENTRYPOINT ["python", "-m", "streamlit", "run", "app.py"]

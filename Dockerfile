# Neural Network Playground - image for internal hosting.
#   docker build -t nn-playground .
#   docker run -p 8501:8501 nn-playground
#   docker run -p 8501:8501 -v nnpg-data:/data nn-playground   # keep runs (SQLite in /data)
# Scale-out behind nginx, all replicas on one PostgreSQL: deploy/docker-compose.yml.
# tests/test_docker.py runs this file's ENTRYPOINT and HEALTHCHECK for real (with its
# ENV) against the repository.
FROM python:3.12-slim

# Headless Streamlit bound to all interfaces of the container, no usage statistics,
# no file watcher (the code never changes inside the image). Training runs in worker
# processes, one job per CPU, so each process gets one BLAS thread. Every
# STREAMLIT_* variable can be overridden with `docker run -e`, e.g.
# STREAMLIT_SERVER_PORT (the HEALTHCHECK follows it) or
# STREAMLIT_SERVER_MAX_UPLOAD_SIZE (raise it together with NNPG_MAX_UPLOAD_MB).
# The run store is a SQLite file in NNPG_DATA_DIR unless NNPG_DATABASE_URL names a
# PostgreSQL database (several replicas must share one: deploy/docker-compose.yml).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    NNPG_DATA_DIR=/data

# A numeric, unprivileged user (Kubernetes' runAsNonRoot can only verify a numeric
# UID). It gets a home directory so libraries that cache under ~ have somewhere to
# write; the application files stay owned by root and read-only for it. /data (the
# SQLite run store) is the one directory it owns; a named volume mounted there starts
# with this ownership.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 -m 0750 /data

WORKDIR /app

# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The application (.dockerignore keeps .venv, .git, tests and caches out).
COPY . .

# plotly.js for the live charts (playground/vendor/), put into static/ now
# (Streamlit's static file serving sends it; the app files are read-only at run time).
RUN python -c "from playground.plotly_live import install_library as i; raise SystemExit(not i())"

# Declared after /data got its owner: build steps after VOLUME cannot change it.
VOLUME ["/data"]

USER 10001:10001

EXPOSE 8501

# Python instead of curl (the slim image has none). Follows STREAMLIT_SERVER_PORT,
# STREAMLIT_SERVER_ADDRESS (0.0.0.0 / :: mean "ask the loopback address") and
# STREAMLIT_SERVER_BASE_URL_PATH; exit code 0 only if the answer is "ok".
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request as u; e=os.environ.get; h=e('STREAMLIT_SERVER_ADDRESS') or '127.0.0.1'; h={'0.0.0.0': '127.0.0.1', '::': '[::1]'}.get(h, h); p=e('STREAMLIT_SERVER_BASE_URL_PATH', '').strip('/'); r=u.urlopen('http://%s:%s%s/_stcore/health' % (h, e('STREAMLIT_SERVER_PORT', '8501'), p and '/' + p), timeout=4); sys.exit(r.read() != b'ok')"]

# Exec form: Streamlit runs as PID 1 and receives the container's SIGTERM itself;
# it then stops its training workers before exiting (tests/test_docker.py checks).
ENTRYPOINT ["python", "-m", "streamlit", "run", "app.py"]

# An example (not tested here): the wheel, with the web app inside, on a slim Python image.
FROM node:22-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
RUN pip wheel --no-deps -w /dist .

FROM python:3.11-slim
RUN useradd --system --create-home diquis
COPY --from=wheel /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER diquis
WORKDIR /home/diquis
EXPOSE 8000
CMD ["diquis", "serve", "--no-worker", "--host", "0.0.0.0", "--port", "8000"]

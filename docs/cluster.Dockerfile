# The worker image of the kubernetes executor (and of Slurm sites that run containers): amp-sessions and
# the agent CLIs, the same versions as the coordinator's. Build from the repository's root:
#
#   docker build -f docs/cluster.Dockerfile -t registry.example.com/amp-sessions-worker:0.1 .
#
# then set `executors.kubernetes.image` to that tag. The agents' API keys come from a Secret
# (`executors.kubernetes.secret`), never from the image. On Slurm sites with Apptainer instead of Docker,
# `apptainer build worker.sif docker-daemon://registry.example.com/amp-sessions-worker:0.1` and point
# `executors.slurm.program` at a wrapper that runs `apptainer exec worker.sif amp-sessions "$@"`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ampsm

FROM node:20-bookworm-slim
# git for the clone and the bundles, the CA certificates for the agents' API calls, procps for stopping
# an agent's process group.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates procps \
 && rm -rf /var/lib/apt/lists/*
# The versions .ci/install-agents.sh pins (keep them in step).
RUN npm install -g @anthropic-ai/claude-code@2.1.330 @openai/codex@0.169.0 @ampcode/cli@0.0.1790142911-g7618fb \
 && npm cache clean --force
COPY --from=build /src/target/release/amp-sessions /usr/local/bin/amp-sessions
# A worker writes its scratch home here; the shared work folder is mounted at the coordinator's path.
ENV AMPSM_WORKER_TMP=/tmp/ampsm-worker
WORKDIR /tmp
# The Job gives the command (`sh -c 'exec amp-sessions batch worker <folder> "$JOB_COMPLETION_INDEX"'`).
CMD ["amp-sessions", "--help"]

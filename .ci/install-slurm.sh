#!/usr/bin/env bash
# Installs Debian's Slurm (slurmctld, slurmd, and the sbatch/squeue/scontrol/scancel/sinfo CLI) and munge, for
# the tests that run a single-node Slurm cluster on loopback (crates/ampsm-testutils/src/slurm.rs). The
# packages' own services are not used (there is no systemd here; where a policy-rc.d exists, as in
# containers, the install does not even try to start them): each test starts its own daemons under a temp
# folder. Idempotent: does nothing when every program the tests look for is there.
set -euo pipefail

needed=(/usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/sbin/mungekey /usr/bin/sbatch
  /usr/bin/squeue /usr/bin/scontrol /usr/bin/scancel /usr/bin/sinfo)
missing=()
for file in "${needed[@]}"; do
  [ -x "$file" ] || missing+=("$file")
done
if [ "${#missing[@]}" = 0 ]; then
  echo "Slurm and munge already installed: $(/usr/sbin/slurmctld -V), $(/usr/sbin/munged -V 2>&1 | head -n 1)"
  exit 0
fi
echo "missing: ${missing[*]}"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  slurm-wlm slurm-client munge
echo "installed: $(/usr/sbin/slurmctld -V), $(/usr/sbin/munged -V 2>&1 | head -n 1)"

#!/usr/bin/env bash
# Run on a real GPU machine (Ubuntu, no Docker or systemd, no network) through the device tool:
# the wheel and the collection from .whl/ (make dist into .whl/ first, plus ansible-core and the
# package's runtime dependencies as wheels), installed into a venv and a collections path, then
# the installed collection's playbooks with -c local against this machine:
#   1. preflight with a true declaration (from nvidia-smi) -> passes
#   2. preflight with a wrong model, count or memory      -> refused, naming both values
#   3. site.yml --tags cuda,docker --check                -> what check mode does on stock Ubuntu
#   4. site.yml --tags vllm                               -> stops with the stage to run
# Everything lands in $OUT/device-<gpus>x.tar.gz and a summary in $OUT/summary-<gpus>x.txt.
set -uo pipefail
OUT=${OUT:?set OUT}
WHEELS=${WHEELS:-.whl}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cap="$WORK/captures"
mkdir -p "$cap"

python3 -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/pip" install -q --no-index --find-links "$WHEELS" ansible-core "$WHEELS"/vllm_fleet-*.whl >"$cap/pip.txt" 2>&1 \
  || { cat "$cap/pip.txt"; exit 1; }
export PATH="$WORK/venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$WORK/collections" ANSIBLE_NOCOLOR=1 \
       ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0
ansible-galaxy collection install -p "$WORK/collections" "$WHEELS"/vllm_fleet-fleet-*.tar.gz >"$cap/galaxy.txt" 2>&1

query=index,name,uuid,compute_cap,driver_version,memory.total,memory.free,pci.bus_id,mig.mode.current
nvidia-smi >"$cap/nvidia-smi.txt" 2>&1
nvidia-smi -q >"$cap/nvidia-smi-q.txt" 2>&1
nvidia-smi -q -x >"$cap/nvidia-smi-q.xml" 2>&1
nvidia-smi --query-gpu=$query --format=csv >"$cap/query-csv.txt" 2>&1
nvidia-smi --query-gpu=$query --format=csv,noheader,nounits >"$cap/query-csv-noheader-nounits.txt" 2>&1
nvidia-smi --version >"$cap/versions.txt" 2>&1
df -PB1 / >"$cap/df.txt"; uname -a >"$cap/uname.txt"; cat /etc/os-release >>"$cap/uname.txt"
ansible localhost -c local -i localhost, -e ansible_python_interpreter="$WORK/venv/bin/python" \
  -m vllm_fleet.fleet.nvidia_gpu_facts >"$cap/module-nvidia_gpu_facts.txt" 2>&1

# The machine as nvidia-smi measures it, and the declarations to hold it to.
count=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
memory=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')
inventory() {  # $1 file, $2 name, $3 count, $4 memory MiB
  local instances="" i
  for ((i = 0; i < $3; i++)); do instances+="{name: gpu$i, gpus: [$i], port: $((8000 + i))}, "; done
  cat >"$1" <<INV
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $WORK/venv/bin/python
      vllm_fleet_profile: hopper
      vllm_fleet_cpu_arch: x86_64
      vllm_fleet_driver_branch: 580
      vllm_fleet_gpu: {name: "$2", compute_capability: "9.0", memory_mib: $4, count: $3}
      vllm_fleet_instances: [${instances%, }]
INV
}
inventory "$WORK/true.yml" "$name" "$count" "$memory"
inventory "$WORK/issue-2xh100.yml" "NVIDIA H100 80GB HBM3" 2 81559
inventory "$WORK/wrong-name.yml" "NVIDIA H100 80GB HBM3" "$count" "$memory"
inventory "$WORK/wrong-count.yml" "$name" $((count == 1 ? 2 : 1)) "$memory"
inventory "$WORK/wrong-memory.yml" "$name" "$count" 81559
cp "$WORK"/*.yml "$cap/"

summary="$OUT/summary-${count}x.txt"
echo "machine: $count x $name, $memory MiB each, $(grep -o 'Driver Version: [0-9.]*' "$cap/nvidia-smi.txt" | head -1)" >"$summary"
# The disk here (64 GiB) is smaller than weights + a 25 GiB image + a 20 GiB margin: state it.
disk=(-e preflight_require_driver=true -e preflight_image_size_gib=10 -e preflight_disk_margin_gib=5)
for case in true issue-2xh100 wrong-name wrong-count wrong-memory; do
  ansible-playbook -i "$WORK/$case.yml" vllm_fleet.fleet.preflight "${disk[@]}" >"$cap/preflight-$case.txt" 2>&1
  echo "preflight $case: exit $?; $(grep -o 'VF1[0-9][0-9]: [^;]*' "$cap/preflight-$case.txt" | sort -u | tr '\n' '|')" >>"$summary"
done
ansible-playbook -i "$WORK/true.yml" vllm_fleet.fleet.site --tags cuda,docker --check --diff >"$cap/check-cuda-docker.txt" 2>&1
echo "site --tags cuda,docker --check: exit $?; $(grep -E '^(fatal|failed|ok|changed):|msg:' "$cap/check-cuda-docker.txt" | tail -4 | tr '\n' '|')" >>"$summary"
ansible-playbook -i "$WORK/true.yml" vllm_fleet.fleet.site --tags vllm "${disk[@]}" >"$cap/vllm-without-docker.txt" 2>&1
echo "site --tags vllm: exit $?; $(grep -o 'cannot run vLLM instances yet[^"]*' "$cap/vllm-without-docker.txt" | head -1)" >>"$summary"
tar -C "$cap" -czf "$OUT/device-${count}x.tar.gz" .
cat "$summary"

# shellcheck shell=bash
# Helpers shared by make-vg, remove-vg and lvm-env: choose the LVM
# configuration (udev or not) and read the record a fixture leaves in its
# directory. Sourced, never run.
# shellcheck disable=SC2034 # REC_* are read by the callers.

vg_fixture_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Quiet LVM's warnings about descriptors inherited from test runners.
export LVM_SUPPRESS_FD_WARNINGS=1

# udev_running: true when a udev daemon serves this machine (it owns /run/udev/control).
udev_running() {
  [[ -e /run/udev/control ]]
}

# lvm_use_fixture_config: without udev and without a caller's LVM_SYSTEM_DIR,
# export LVM_SYSTEM_DIR so that LVM uses lvm.conf from this directory.
lvm_use_fixture_config() {
  if [[ -z ${LVM_SYSTEM_DIR:-} ]] && ! udev_running; then
    export LVM_SYSTEM_DIR=$vg_fixture_dir
  fi
}

# fixture_die MESSAGE...: print to stderr and exit 1.
fixture_die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# check_vg_name NAME: LVM's rules for a VG name, plus nothing that needs quoting.
check_vg_name() {
  [[ $1 =~ ^[A-Za-z0-9_+.][A-Za-z0-9_+.-]*$ && $1 != . && $1 != .. && ${#1} -le 127 ]] ||
    fixture_die "bad volume group name: $1"
}

# record_path DIR VG: where make-vg records what it made.
record_path() {
  printf '%s/%s.vg-fixture\n' "$1" "$2"
}

# read_record FILE: set REC_VG, REC_FILE, REC_LOOP from KEY=VALUE lines (not sourced).
read_record() {
  local key value
  REC_VG='' REC_FILE='' REC_LOOP=''
  [[ -r $1 ]] || return 0
  while IFS='=' read -r key value; do
    case $key in
      VG) REC_VG=$value ;;
      FILE) REC_FILE=$value ;;
      LOOP) REC_LOOP=$value ;;
    esac
  done <"$1"
}

# shellcheck shell=bash
# Helpers shared by the scripts in scripts/vm: where the cache lives and which
# kernel the test VM boots. Sourced, never run.
# shellcheck disable=SC2034 # VM_KERNEL and VM_KVER are read by the callers.

# vm_cache_dir: the directory holding the initramfs and the KVM probe result.
vm_cache_dir() {
  printf '%s\n' "${VOLMERGE_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/volmerge-vm}"
}

# vm_die MESSAGE...: print to stderr and exit 125 (the harness itself failed).
vm_die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 125
}

# vm_select_kernel: set VM_KERNEL (vmlinuz path) and VM_KVER (module dir name).
# VOLMERGE_VM_KERNEL picks the image; otherwise the newest /boot/vmlinuz-*
# whose modules are installed.
vm_select_kernel() {
  local image kver
  if [[ -n ${VOLMERGE_VM_KERNEL:-} ]]; then
    image=$VOLMERGE_VM_KERNEL
    kver=${image##*/vmlinuz-}
    [[ -r $image ]] || vm_die "kernel image $image is not readable"
    [[ -f /lib/modules/$kver/modules.dep ]] ||
      vm_die "no modules for $kver in /lib/modules (VOLMERGE_VM_KERNEL=$image)"
    VM_KERNEL=$image VM_KVER=$kver
    return 0
  fi
  while IFS= read -r image; do
    kver=${image#/boot/vmlinuz-}
    if [[ -r $image && -f /lib/modules/$kver/modules.dep ]]; then
      VM_KERNEL=$image VM_KVER=$kver
      return 0
    fi
  done < <(compgen -G '/boot/vmlinuz-*' | sort -rV)
  vm_die "no /boot/vmlinuz-* with matching /lib/modules (install linux-image-amd64)"
}

# vm_boot_image: print the image for qemu -kernel. A kernel built with
# CONFIG_PVH boots much faster under TCG from its uncompressed ELF (no
# decompression inside the emulator), so that ELF is extracted once from the
# bzImage into the cache. Falls back to the bzImage when that is not possible.
# Needs VM_KERNEL and VM_KVER (vm_select_kernel).
vm_boot_image() {
  local cache key out magic offset tmp
  if [[ ${VOLMERGE_VM_PVH:-1} == 0 ]] ||
    ! grep -qx 'CONFIG_PVH=y' "/boot/config-$VM_KVER" 2>/dev/null; then
    printf '%s\n' "$VM_KERNEL"
    return 0
  fi
  cache=$(vm_cache_dir)
  mkdir -p "$cache"
  key=$(sha256sum <"$VM_KERNEL")
  out=$cache/vmlinux-$VM_KVER-${key:0:16}
  if [[ ! -s $out ]]; then
    tmp=$(mktemp "$cache/.vmlinux.XXXXXX")
    # The payload is the first compressed stream inside the bzImage.
    for magic in '\xfd7zXZ\x00:xz' '\x28\xb5\x2f\xfd:zstd' '\x1f\x8b\x08:gzip'; do
      offset=$(LC_ALL=C grep -obUaP -m1 "${magic%:*}" "$VM_KERNEL" 2>/dev/null | head -n1 | cut -d: -f1) || true
      [[ -n $offset ]] || continue
      case ${magic##*:} in
        xz) tail -c "+$((offset + 1))" "$VM_KERNEL" | xz -dc --single-stream >"$tmp" 2>/dev/null || true ;;
        zstd) tail -c "+$((offset + 1))" "$VM_KERNEL" | zstd -dc -q >"$tmp" 2>/dev/null || true ;;
        gzip) tail -c "+$((offset + 1))" "$VM_KERNEL" | gzip -dc >"$tmp" 2>/dev/null || true ;;
      esac
      [[ $(head -c 4 "$tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] && break
      : >"$tmp"
    done
    if [[ ! -s $tmp ]]; then
      rm -f -- "$tmp"
      printf '%s\n' "$VM_KERNEL"
      return 0
    fi
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$out"
  fi
  # Other extractions of this kernel version, once no VM can be starting from them.
  find "$cache" -maxdepth 1 -name "vmlinux-$VM_KVER-*" ! -name "${out##*/}" -mmin +10 -delete 2>/dev/null || true
  find "$cache" -maxdepth 1 -name '.vmlinux.*' -mmin +10 -delete 2>/dev/null || true
  printf '%s\n' "$out"
}

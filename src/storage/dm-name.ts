// Splits a device-mapper name of an LV ("vg-lv", dashes inside names doubled) into VG and LV names.

/** The VG and LV of a mangled dm name such as "my--vg-lv--1", or undefined when it is not of that form. */
export function splitDmName(dmName: string): { vg: string; lv: string } | undefined {
  for (let i = 0; i < dmName.length; i += 1) {
    if (dmName[i] !== '-') continue;
    if (dmName[i + 1] === '-') {
      i += 1;
      continue;
    }
    const vg = dmName.slice(0, i).replace(/--/g, '-');
    const lv = dmName.slice(i + 1).replace(/--/g, '-');
    return vg && lv ? { vg, lv } : undefined;
  }
  return undefined;
}

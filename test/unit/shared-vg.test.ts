// Shared VGs: lock types, lvchange failures (a lock error is never "gone"), lvmlockctl's lock modes, job LV names, and
// the job LV's byte layout (two journal slots, a torn write, the backup area) on a plain file.
import { expect } from 'chai';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgainst } from '../../src/schema.js';
import { classifyActivationFailure, isSharedLockType, lockModeFromInfo } from '../../src/storage/shared-vg.js';
import { bytesForBackup, clearJobLv, MIN_JOB_LV_BYTES, readBackupArea, readNewestSlot, SLOT_SIZE, writeBackupArea, writeSlot } from '../../src/engine/job-lv-format.js';
import { jobLvName } from '../../src/engine/shared-vg-store.js';
import { fixture } from './fixtures.js';

describe('shared volume groups', () => {
  it('reads the lock type from vgs JSON and tells shared VGs from local ones', () => {
    const report = parseAgainst<{ report: { vg: Record<string, string>[] }[] }>('vgs.schema.json', fixture('lvm/vgs-shared.json'), 'vgs');
    expect(report.report[0]?.vg[0]?.vg_lock_type).to.equal('sanlock');
    expect(isSharedLockType('sanlock', 'vg0')).to.equal(true);
    expect(isSharedLockType('dlm', 'vg0')).to.equal(true);
    expect(isSharedLockType('', 'vg0')).to.equal(false);
    expect(() => isSharedLockType('idm', 'vg0')).to.throw(/lock type "idm"/);
  });

  it('classifies lvchange failures: lock errors first, never as a missing volume (recorded stderr)', () => {
    expect(classifyActivationFailure(fixture('lvm/lvchange-locked.stderr'))).to.equal('locked-by-other-host');
    expect(classifyActivationFailure('  VG vg0 lock failed: held by other host\n')).to.equal('locked-by-other-host');
    expect(classifyActivationFailure(fixture('lvm/lvchange-lockspace-stopped.stderr'))).to.equal('lock-failed');
    expect(classifyActivationFailure(fixture('lvm/lvchange-lv-missing.stderr'))).to.equal('lv-missing');
    expect(classifyActivationFailure(fixture('lvm/lvs-vg-missing.stderr'))).to.equal('vg-missing');
    expect(classifyActivationFailure('  something else\n')).to.equal('lvm-failed');
  });

  it('reads the lock mode of an LV from lvmlockctl --info', () => {
    const info = fixture('lvm/lvmlockctl-info.txt');
    expect(lockModeFromInfo(info, '0OBBrF-o5Y5-qLUm-bxky-eILy-s8rZ-TWDWrc')).to.equal('ex');
    expect(lockModeFromInfo(info, '1PCCsG-p6Z6-rMVn-cyzl-fJMz-t9d2-UXEXsd')).to.equal('sh');
    expect(lockModeFromInfo(info, 'NMYZ8A-xw58-OjOt-PJFw-h2HO-T1c1-pJ4fco'), 'unlocked').to.equal(undefined);
    expect(lockModeFromInfo(info, 'nosuch')).to.equal(undefined);
  });

  it('names job LVs after the job, hashing ids that LVM would not accept', () => {
    expect(jobLvName('5f0c7a52-1d3e-4b8a-9c6f-0e2d4a6b8c10')).to.equal('volmerge_job_5f0c7a52-1d3e-4b8a-9c6f-0e2d4a6b8c10');
    const hashed = jobLvName('job_tmeta_1');
    expect(hashed).to.match(/^volmerge_job_h[0-9a-f]{40}$/);
    expect(jobLvName('x'.repeat(128))).to.match(/^volmerge_job_h/).and.to.not.equal(hashed);
  });
});

describe('job LV layout', () => {
  let dir: string;
  let device: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volmerge-joblv-'));
    device = join(dir, 'lv');
    await (await open(device, 'w')).close();
    await truncate(device, 8 * 1024 * 1024);
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('keeps the newest whole journal: slots alternate, a torn write leaves the previous one', async () => {
    const handle = await open(device, 'r+');
    try {
      await handle.write(Buffer.from('{"magic":"volmerge-job-slot","version":1,"seq":99,"length":2,"sha256":"00"}\n'), 0, undefined, 0);
      await clearJobLv(handle);
      expect(await readNewestSlot(handle), 'cleared: no journal, whatever was there before').to.equal(undefined);
      await writeSlot(handle, 1, '{"n":1}');
      await writeSlot(handle, 2, '{"n":2}');
      expect(await readNewestSlot(handle)).to.deep.equal({ text: '{"n":2}', seq: 2 });
      await writeSlot(handle, 3, '{"n":3}');
      // Tear slot 1 (seq 3): its body no longer matches its checksum.
      await handle.write(Buffer.from('XX'), 0, 2, SLOT_SIZE + 512);
      expect(await readNewestSlot(handle)).to.deep.equal({ text: '{"n":2}', seq: 2 });
    } finally {
      await handle.close();
    }
  });

  it('stores backup files after the index and reads them back checked', async () => {
    const handle = await open(device, 'r+');
    try {
      await clearJobLv(handle);
      expect(await readBackupArea(handle)).to.deep.equal([]);
      const files = [
        { name: 'top-bitmaps.qcow2', data: Buffer.alloc(5000, 7) },
        { name: 'base-bitmaps.qcow2', data: Buffer.alloc(3, 9) },
      ];
      await writeBackupArea(handle, files);
      expect(await readBackupArea(handle)).to.deep.equal(files);
      expect(bytesForBackup([5000, 3])).to.equal(MIN_JOB_LV_BYTES + 8192 + 4096);
      await writeSlot(handle, 1, '{"after":"backup"}');
      expect(await readBackupArea(handle), 'journal writes leave the backup alone').to.deep.equal(files);
    } finally {
      await handle.close();
    }
  });
});

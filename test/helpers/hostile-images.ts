// Test helper: images whose headers volmerge must refuse: LUKS-encrypted qcow2, backing chains that loop.
import { execa } from 'execa';
import { sh } from './commands.js';

/** The secret the encrypted test images are made with (test data only). */
export const TEST_SECRET = 'volmerge-test-secret';

/**
 * Creates a LUKS-encrypted qcow2 image (optionally over a qcow2 backing file). qemu's PBKDF benchmark sometimes measures
 * no CPU time at all on a busy machine and fails with "Unable to get accurate CPU usage": that one failure is retried.
 */
export async function createEncrypted(image: string, options: { size?: number; backing?: string }): Promise<void> {
  const argv = [
    'create',
    '-q',
    '-f',
    'qcow2',
    '--object',
    `secret,id=sec0,data=${TEST_SECRET}`,
    '-o',
    'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10',
    ...(options.backing ? ['-b', options.backing, '-F', 'qcow2'] : []),
    image,
    ...(options.size !== undefined ? [String(options.size)] : []),
  ];
  for (let attempt = 1; ; attempt += 1) {
    const result = await execa('qemu-img', argv, { reject: false, stdin: 'ignore' });
    if (result.exitCode === 0) return;
    if (attempt >= 8 || !String(result.stderr).includes('Unable to get accurate CPU usage')) {
      throw new Error(`qemu-img ${argv.join(' ')} exited ${result.exitCode}: ${String(result.stderr)}`);
    }
  }
}

/** Points `image`'s header at a new backing file without reading anything (qemu-img rebase -u), e.g. to close a loop. */
export async function setBacking(image: string, backing: string, backingFormat: 'qcow2' | 'raw' = 'qcow2'): Promise<void> {
  await sh(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-b', backing, '-F', backingFormat, image]);
}

// TLS material of the agent's TCP listener and of its clients: certificate, key and CA files, read and checked up front
// so that a wrong file is a one-line error at start, not a failed handshake later.
import { createSecureContext } from 'node:tls';
import { readFile, stat } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';

/** The oldest TLS version spoken, by the agent and by its clients. */
export const MIN_TLS_VERSION = 'TLSv1.2';

/** Where the PEM files are: this side's certificate and key, and the CA that signs the other side's certificate. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** The PEM texts read from TlsFiles. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new VolmergeError('usage', `${flag} ${path}: ${(error as Error).message}`);
  }
}

/** Reads and checks the three files (each a PEM, the key matching the certificate); warns when others may read the key. */
export async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const material = {
    cert: await readPem('--tls-cert', files.cert),
    key: await readPem('--tls-key', files.key),
    ca: await readPem('--tls-ca', files.ca),
  };
  try {
    createSecureContext({ ...material, minVersion: MIN_TLS_VERSION });
  } catch (error) {
    throw new VolmergeError(
      'usage',
      `--tls-cert ${files.cert}, --tls-key ${files.key}, --tls-ca ${files.ca}: ${(error as Error).message} (each must be PEM, and the key the certificate's own)`,
    );
  }
  const { mode } = await stat(files.key);
  if ((mode & 0o077) !== 0) log.warn(`--tls-key ${files.key} can be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return material;
}

// Test helper: a CA, the agent's certificate and client certificates made with openssl at test time (argv arrays only):
// a good client, one signed by another CA, and an expired one.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './commands.js';

/** One certificate and its key, as PEM files. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** Everything a TLS test needs: the CA that the agent trusts, the agent's pair, and three client pairs. */
export interface TestPki {
  ca: string;
  agent: CertFiles;
  client: CertFiles;
  otherCaClient: CertFiles;
  expiredClient: CertFiles;
  /** A second CA, for clients the agent must refuse. */
  otherCa: string;
}

/** A self-signed CA certificate and key in dir: name.pem, name.key. */
async function makeCa(dir: string, name: string): Promise<CertFiles> {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  await sh(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.key, '-out', files.cert,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return files;
}

/** A key and a certificate request for CN=name. */
async function makeRequest(dir: string, name: string): Promise<{ key: string; csr: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  await sh(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  return { key, csr };
}

/** A certificate for CN=name signed by ca, valid for two days, with the given extensions (an OpenSSL extension file's lines). */
async function signed(dir: string, name: string, ca: CertFiles, extensions: string[]): Promise<CertFiles> {
  const { key, csr } = await makeRequest(dir, name);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, `${extensions.join('\n')}\n`);
  const cert = join(dir, `${name}.pem`);
  await sh(['openssl', 'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-sha256', '-extfile', extFile]);
  return { cert, key };
}

/** A client certificate signed by ca that expired in 2020 (openssl ca takes explicit dates; x509 -req does not). */
async function expired(dir: string, name: string, ca: CertFiles): Promise<CertFiles> {
  const { key, csr } = await makeRequest(dir, name);
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  const config = join(dir, 'ca.cnf');
  await writeFile(
    config,
    [
      '[ca]', 'default_ca = test_ca', '[test_ca]', `database = ${join(dir, 'index.txt')}`, `new_certs_dir = ${dir}`, `serial = ${join(dir, 'serial')}`,
      'default_md = sha256', 'policy = any_name', 'unique_subject = no', 'x509_extensions = client_ext', '[any_name]', 'commonName = supplied',
      '[client_ext]', 'basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth', '',
    ].join('\n'),
  );
  const cert = join(dir, `${name}.pem`);
  await sh(['openssl', 'ca', '-batch', '-notext', '-config', config, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  return { cert, key };
}

/** Makes the whole set in dir; the agent's certificate names 127.0.0.1 and localhost. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'engine-ca');
  const otherCa = await makeCa(dir, 'other-ca');
  const clientExt = ['basicConstraints = CA:FALSE', 'extendedKeyUsage = clientAuth'];
  return {
    ca: ca.cert,
    otherCa: otherCa.cert,
    agent: await signed(dir, 'agent', ca, ['basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth', 'subjectAltName = IP:127.0.0.1,DNS:localhost']),
    client: await signed(dir, 'engine', ca, clientExt),
    otherCaClient: await signed(dir, 'intruder', otherCa, clientExt),
    expiredClient: await expired(dir, 'expired-engine', ca),
  };
}

// The provisioning flow's command bytes against a TPM that already has every command it sends:
// provision() drives Debian's swtpm over its data socket (RSA and ECC EKs, EvictControl,
// NV_DefineSpace/NV_Write in 1024-byte chunks, NV_WriteLock, PCR_Allocate), and tpm2-tools then
// read back what swtpm_setup would have left: the persistent EKs, the certificates in NV with
// attributes 0x42072001 (+ written, write-locked), and the banks.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { parseLocalCaConfig } from '../../src/setup/localca-config.js';
import { provision } from '../../src/setup/provision.js';
import { makeTempDir, startDaemon, swtpmAvailable } from '../helpers/daemon.js';
import { tpm2ok, run } from '../helpers/tools.js';
import { TpmClient } from '../helpers/tpm.js';

it.skipIf(!swtpmAvailable())('provision() on swtpm: EKs persistent, certificates in write-locked NV, banks allocated', async () => {
  const work = makeTempDir('vtpmd-prov-');
  const d = await startDaemon({ impl: 'swtpm', flags: ['not-need-init', 'startup-clear'] });
  const client = await TpmClient.connect({ port: d.port });
  const result = await provision(
    { executeTpm: async (cmd) => new Uint8Array(await client.transmit(cmd, 30_000)) },
    {
      createEk: true,
      ekCert: true,
      platformCert: true,
      lockNvram: true,
      createSpk: true,
      spkEcc: true,
      ekAlgorithms: ['rsa2048', 'secp384r1'],
      allowSigning: false,
      decryption: false,
      pcrBanks: ['sha256'],
      // A long subject pushes the RSA EK certificate past one 1024-byte NV_Write chunk.
      vmid: `vm-swtpm-${'0123456789'.repeat(4)}`,
      tpmIdentity: { model: 'swtpm' },
      platform: { manufacturer: 'Fedora', model: 'QEMU', version: '2.1' },
      ca: parseLocalCaConfig(`statedir = ${path.join(work, 'ca')}\n`),
      certFilesDir: work,
    },
  );
  client.close();
  expect(result.warnings).toEqual([]);
  expect(result.lines).toContain('Successfully created RSA 2048 EK with handle 0x81010001.');
  expect(result.lines).toContain('Successfully created ECC P-384 EK with handle 0x81010016.');
  expect(result.lines).toContain('Successfully created NVRAM area 0x1c00002 for RSA 2048 EK certificate (write-locked).');
  expect(result.lines).toContain('Successfully created NVRAM area 0x1c08000 for platform certificate (write-locked).');
  // NV_Write went in two chunks.
  expect(result.eks[0]!.certificate!.length).toBeGreaterThan(1024);

  // Shutdown(CLEAR) was sent: restart on the same state and read everything back.
  await d.stop();
  const e = await startDaemon({ impl: 'swtpm', flags: ['not-need-init', 'startup-clear'], stateDir: d.stateDir });
  const handles = (await tpm2ok('getcap', e.tcti, ['handles-persistent'])).stdout;
  for (const h of ['0x81000001', '0x81010001', '0x81010016']) expect(handles).toContain(h);
  const nv = (await tpm2ok('nvreadpublic', e.tcti)).stdout;
  for (const index of ['0x1c00002', '0x1c00016', '0x1c08000']) {
    const entry = new RegExp(`${index}:[\\s\\S]*?attributes:[\\s\\S]*?value: (0x[0-9A-Fa-f]+)`).exec(nv);
    // 0x42072001 as defined, plus TPMA_NV_WRITELOCKED and TPMA_NV_WRITTEN: what swtpm_setup leaves.
    expect(entry?.[1]?.toLowerCase(), index).toBe('0x62072801');
  }
  const out = path.join(work, 'nv.der');
  await tpm2ok('nvread', e.tcti, ['0x01c00002', '-C', 'o', '-o', out]);
  expect(readFileSync(out).equals(Buffer.from(result.eks[0]!.certificate!))).toBe(true);
  expect(readFileSync(path.join(work, 'ek-rsa2048.crt')).equals(readFileSync(out))).toBe(true);
  // tpm2-tools recreates the RSA EK and it is the certified key.
  const ekPem = path.join(work, 'ek.pem');
  await tpm2ok('createek', e.tcti, ['-G', 'rsa', '-c', path.join(work, 'ek.ctx'), '-u', ekPem, '-f', 'pem']);
  const certPem = path.join(work, 'cert.pem');
  writeFileSync(certPem, (await run('openssl', ['x509', '-inform', 'der', '-in', out])).stdout);
  const certKey = (await run('openssl', ['x509', '-in', certPem, '-noout', '-pubkey'])).stdout;
  expect(readFileSync(ekPem, 'utf8').trim()).toBe(certKey.trim());
  expect((await tpm2ok('getcap', e.tcti, ['pcrs'])).stdout).toMatch(/sha1:\s*\[\s*\]/);
  await e.stop();
}, 180_000);
